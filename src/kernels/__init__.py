"""CPU kernels the MindSpore 2.10 CPU backend runs slowly, as AOT custom operators (C++ sources here, compiled
on first use by ``build.compiled_library``)."""
