"""The margin registry: each margin module registers its cell here (``@MARGINS.register``)."""
from src.registry import Registry

MARGINS = Registry("head")


def margin_parameters(name):
    """The declared parameters ({name: schema spec}) of margin ``name``: the config validates ``head`` with them."""
    return MARGINS.get(name).PARAMS
