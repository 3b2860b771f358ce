"""The verification threshold that travels with an exported model: chosen from eval.py's JSON by ``export.py
--threshold_from EVAL_JSON --threshold_rule far1e-3|far1e-4|best_acc`` into the sidecar ``<model>.json``, and
read back by the predictor (``infer.py`` uses it unless ``--same_threshold`` is given).

eval.py's JSON holds, per model (and per target with ``val_targets``), ``thresholds`` computed on the cosine
scores of its ``fusion`` (src/eval/thresholds.py); a threshold only means something for the same model and the
same fusion, so both are checked.

1:N (open-set) search needs a stricter threshold than 1:1 verification: a query of someone not enrolled is
compared with every identity of the gallery and is wrongly accepted when any one of them scores above the
threshold, so its false accepts grow with the gallery's size. ``open_set_threshold`` gives the strictest FAR-based
threshold (FAR 1e-3 or stricter) that eval.py's JSON or the sidecar holds.
"""

import json
import logging
import os

from src.eval.sidecar import read_record, sidecar_path
from src.eval.threshold_rules import RULES

LOG = logging.getLogger("facerec.eval")


OPEN_SET_RULES = ("far1e-3", "far1e-4")


class ThresholdError(ValueError):
    """The eval JSON cannot give the requested threshold; the message names the file."""


def _read_json(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except OSError as err:
        raise ThresholdError(f"cannot read {path}: {err.strerror}") from err
    except json.JSONDecodeError as err:
        raise ThresholdError(f"{path}: not a JSON file ({err})") from err


def _model_entry(record, json_path, model):
    """The JSON entry of ``model`` (compared as real paths)."""
    wanted = os.path.realpath(model)
    for path, entry in record.get("models", {}).items():
        if os.path.realpath(path) == wanted:
            return path, entry
    raise ThresholdError(
        f"{json_path}: has no results of {model} (it evaluated: "
        f"{', '.join(record.get('models', {})) or 'nothing'}); a threshold belongs to its model: "
        f"run eval.py on {model} first"
    )


def _target_thresholds(entry, json_path, target):
    """(target name or None, its ``thresholds``) of a model entry."""
    if "targets" not in entry:
        if target is not None:
            raise ThresholdError(f"{json_path}: evaluated one pair set, not val_targets; drop threshold_target")
        if "thresholds" not in entry:
            raise ThresholdError(f"{json_path}: no 'thresholds' (written by an older eval.py): run eval.py again")
        return None, entry["thresholds"]
    names = list(entry["targets"])
    if target is None:
        if len(names) > 1:
            raise ThresholdError(
                f"{json_path}: evaluated {len(names)} targets ({', '.join(names)}): choose one with --threshold_target"
            )
        target = names[0]
    if target not in entry["targets"]:
        raise ThresholdError(f"{json_path}: no target '{target}' (it has {', '.join(names)})")
    return target, entry["targets"][target]["thresholds"]


def threshold_from_eval(json_path, model, rule, target=None):
    """The sidecar's ``threshold`` record for ``model`` from eval.py's JSON: {'value', 'rule', 'fusion', 'target',
    'tar', 'far', 'accuracy', 'eval_json', 'model', 'definition'}."""
    if rule not in RULES:
        raise ThresholdError(f"unknown threshold rule '{rule}'; choose one of {list(RULES)}")
    record = _read_json(json_path)
    model_path, entry = _model_entry(record, json_path, model)
    target, thresholds = _target_thresholds(entry, json_path, target)
    chosen = thresholds.get(rule)
    if chosen is None:
        raise ThresholdError(
            f"{json_path}: {rule} is not resolved by {target or 'the pair set'} (fewer than "
            f"1/FAR different pairs); use --threshold_rule best_acc or a larger set"
        )
    return {
        "value": chosen["threshold"],
        "rule": rule,
        "fusion": thresholds["fusion"],
        "target": target,
        "tar": chosen["tar"],
        "far": chosen["far"],
        "accuracy": chosen["accuracy"],
        "eval_json": os.path.abspath(json_path),
        "model": model_path,
        "definition": thresholds["rule"],
    }


def describe(record, source):
    """Where a threshold record (``threshold_from_eval``) comes from, as a phrase."""
    on = f" on {record['target']}" if record.get("target") else ""
    return f"{record['rule']}{on} (TAR {record['tar']:.4f} at FAR {record['far']:.2e}), from {source}"


def stored_threshold(model_path, fusion):
    """The threshold record of the sidecar ``<model>.json``, or None when there is none. A threshold measured
    with another fusion is not used (logged)."""
    record = read_record(model_path)
    stored = None if record is None else record.get("threshold")
    if stored is not None and stored["fusion"] != fusion:
        LOG.warning(
            "%s: its threshold was measured with fusion %s, this run uses %s: not used",
            sidecar_path(model_path),
            stored["fusion"],
            fusion,
        )
        return None
    return stored


def sidecar_threshold(model_path, fusion):
    """(threshold, a sentence saying where it comes from) from the sidecar ``<model>.json``, or (None, None)
    when there is none (or it was measured with another fusion)."""
    stored = stored_threshold(model_path, fusion)
    if stored is None:
        return None, None
    return stored["value"], describe(stored, sidecar_path(model_path))


def open_set_threshold(model_path, fusion, eval_json=None):
    """(threshold, where it comes from) for 1:N search: the strictest FAR-based threshold (FAR 1e-3 or
    stricter; of equal FARs the highest) of the model's results in eval.py's JSON (``eval_json``, else
    ``eval_result.json`` beside the model, eval.py's default), on any of its targets, or of the sidecar; (None,
    the sources looked at) when none holds one, e.g. a set with fewer than 1,000 different pairs."""
    json_path = eval_json or os.path.join(os.path.dirname(os.path.abspath(model_path)), "eval_result.json")
    candidates = []
    if eval_json or os.path.isfile(json_path):
        record = _read_json(json_path)
        try:
            _, entry = _model_entry(record, json_path, model_path)
        except ThresholdError:
            if eval_json:
                raise
            entry = {}
        for target in entry.get("targets") or ([None] if entry else []):
            for rule in OPEN_SET_RULES:
                try:
                    found = threshold_from_eval(json_path, model_path, rule, target)
                except ThresholdError:
                    continue
                if found["fusion"] == fusion:
                    candidates.append((found, json_path))
    stored = stored_threshold(model_path, fusion)
    if stored is not None and stored["rule"] in OPEN_SET_RULES:
        candidates.append((stored, sidecar_path(model_path)))
    if not candidates:
        return None, f"no FAR 1e-3 or stricter threshold of this model in {json_path} or {model_path}.json"
    found, source = min(candidates, key=lambda c: (RULES[c[0]["rule"]], -c[0]["value"]))
    return found["value"], describe(found, source)
