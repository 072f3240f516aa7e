"""The ``training:`` section of a job spec, resolved to a full careamics configuration.

Two forms, both ending as the JSON-able dictionary careamics itself saves
(``Configuration.model_dump(mode="json")``), so that the run directory records exactly what ran:

- the short form names an algorithm and the parameters of careamics' own factory
  (``create_advanced_n2v_config``, ``create_advanced_care_config``,
  ``create_advanced_n2n_config``); ``epochs`` and ``steps`` stand for ``num_epochs`` and
  ``num_steps``. Which keys exist is read from the factory's signature, so new careamics
  parameters work without changes here.
- ``config:`` holds a full careamics configuration, inline or as the path of a YAML file written
  by ``careamics.config.utils.configuration_io.save_configuration``.

careamics is imported inside these functions only (it takes seconds to import); pydantic's
errors are turned into problems that name the spec key.
"""

from __future__ import annotations

import copy
import inspect
import math
import os
import re
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hpc_runner.spec.errors import Problems, join_key, load_yaml_mapping, unknown_key_reason

ALGORITHMS = ("n2v", "care", "n2n")
SUPERVISED = frozenset({"care", "n2n"})
#: Friendly short-form names for factory parameters.
ALIASES = {"epochs": "num_epochs", "steps": "num_steps"}
#: Factory parameters the spec sets itself (from the data section and the name).
_DERIVED = frozenset({"data_type"})
#: careamics field names → the short-form key a user wrote.
_FIELD_TO_KEY = {
    "max_epochs": "epochs",
    "limit_train_batches": "steps",
    "patch_filter": "patch_filter_config",
    "struct_mask": "struct_n2v_axes",
    "n2v2": "use_n2v2",
    "in_channels": "n_channels",
}


def _factory(algorithm: str) -> Callable[..., Any]:
    from careamics.config import (
        create_advanced_care_config,
        create_advanced_n2n_config,
        create_advanced_n2v_config,
    )

    factories: dict[str, Callable[..., Any]] = {
        "n2v": create_advanced_n2v_config,
        "care": create_advanced_care_config,
        "n2n": create_advanced_n2n_config,
    }
    return factories[algorithm]


def experiment_name(name: str) -> str:
    """A careamics experiment name (letters, digits, ``_``, ``-``, spaces) from a run name."""
    return re.sub(r"[^A-Za-z0-9_\- ]", "_", name) or "experiment"


def resolve_training(
    section: Any, *, name: str, data_type: str, spec_dir: Path, problems: Problems
) -> tuple[dict[str, Any] | None, list[str]]:
    """The full careamics configuration of a ``training:`` section, and careamics' warnings.

    Returns ``(None, [])`` after adding problems when the section cannot be resolved.
    """
    if not isinstance(section, dict):
        problems.add("training", "expected a mapping: either 'config: ...' or 'algorithm: n2v' ...")
        return None, []
    if "config" in section:
        extra = sorted(set(section) - {"config"})
        if extra:
            problems.add(
                join_key("training", extra[0]),
                "cannot be combined with 'training.config' (put it inside the careamics "
                "configuration, or use the short form without 'config')",
            )
            return None, []
        return _resolve_full(section["config"], data_type, spec_dir, problems)
    return _resolve_short(section, name, data_type, problems)


def _resolve_short(
    section: dict[str, Any], name: str, data_type: str, problems: Problems
) -> tuple[dict[str, Any] | None, list[str]]:
    if _non_finite(section, "training", problems):
        return None, []
    algorithm = section.get("algorithm")
    if algorithm not in ALGORITHMS:
        reason = (
            "missing (add 'algorithm: n2v', 'care' or 'n2n', or give a full 'config:')"
            if algorithm is None
            else f"'{algorithm}' is not one of {', '.join(ALGORITHMS)}"
        )
        problems.add("training.algorithm", reason)
        return None, []
    factory = _factory(algorithm)
    parameters = inspect.signature(factory).parameters
    valid = {"algorithm", *ALIASES, *(p for p in parameters if p not in _DERIVED)}
    kwargs: dict[str, Any] = {}
    ok = True
    for key, value in section.items():
        if key == "algorithm":
            continue
        if key not in valid:
            problems.add(join_key("training", key), unknown_key_reason(key, sorted(valid)))
            ok = False
            continue
        target = ALIASES.get(key, key)
        if target in kwargs:
            problems.add(join_key("training", key), f"given twice (as '{target}' too): keep one")
            ok = False
        kwargs[target] = value
    kwargs.setdefault("experiment_name", experiment_name(name))
    kwargs["data_type"] = data_type
    for required, parameter in parameters.items():
        if parameter.default is inspect.Parameter.empty and required not in kwargs:
            problems.add(join_key("training", required), f"missing (required by {algorithm})")
            ok = False
    if not ok:
        return None, []
    resolved, notes = _validated(lambda: factory(**kwargs), "training", _short_key, problems)
    if resolved is not None and not _unchecked_params_ok(
        resolved,
        {
            "max_epochs": "training.epochs",
            "limit_train_batches": "training.steps",
            "optimizer": "training.optimizer_params",
            "lr_scheduler": "training.lr_scheduler_params",
            "train_dataloader_params": "training.train_dataloader_params",
            "val_dataloader_params": "training.val_dataloader_params",
            "seed": "training.seed",
        },
        problems,
    ):
        return None, []
    return resolved, notes


def _resolve_full(
    config: Any, data_type: str, spec_dir: Path, problems: Problems
) -> tuple[dict[str, Any] | None, list[str]]:
    key_prefix = "training.config"
    target = problems
    if isinstance(config, str):
        path = Path(config).expanduser()
        path = path if path.is_absolute() else spec_dir / path
        if not os.path.lexists(path):  # anything else there: load_yaml_mapping says what it is
            problems.add(key_prefix, f"no such careamics configuration file: {path}")
            return None, []
        target = Problems(path)
        loaded = load_yaml_mapping(path, target)
        key_prefix = ""
        if loaded is None:
            problems.extend(target.items)
            return None, []
        config = loaded
    if not isinstance(config, dict):
        problems.add(key_prefix, "expected a careamics configuration mapping or a YAML file path")
        return None, []
    if _non_finite(config, key_prefix, target):
        if target is not problems:
            problems.extend(target.items)
        return None, []
    config = copy.deepcopy(config)
    notes: list[str] = []
    data_config = config.get("data_config")
    if isinstance(data_config, dict):
        requested = data_config.get("data_type")
        if requested not in (data_type, "array"):
            notes.append(
                f"careamics data_type '{requested}' replaced by '{data_type}' to match the data"
            )
            data_config["data_type"] = data_type
        if data_config["data_type"] == "array":
            data_config["in_memory"] = True

    def build() -> Any:
        from careamics.config.factories.config_discriminators import instantiate_config

        return instantiate_config(config)

    def key_of(title: str, loc: tuple[Any, ...]) -> str:
        loc = loc[1:] if loc and loc[0] in ALGORITHMS else loc  # the union's tag
        path = key_prefix
        for part in loc:
            path = join_key(path, part)
        return path or "-"

    resolved, warned = _validated(build, key_prefix, key_of, target)
    if resolved is not None:
        _report_dropped(config, resolved, key_prefix, target)
        params_key = join_key(key_prefix, "training_config.trainer_params")
        keys = {name: join_key(params_key, name) for name in ("max_epochs", "limit_train_batches")}
        for name in ("optimizer", "lr_scheduler"):
            keys[name] = join_key(key_prefix, f"algorithm_config.{name}.parameters")
        for name in ("train_dataloader_params", "val_dataloader_params", "seed"):
            keys[name] = join_key(key_prefix, f"data_config.{name}")
        if not _unchecked_params_ok(resolved, keys, target):
            resolved = None
    else:  # still name the typos that careamics' first error hid
        algorithm = (config.get("algorithm_config") or {}).get("algorithm")
        if algorithm in ALGORITHMS:
            reported = {item.key for item in target.items}
            _report_unknown(config, (algorithm,), key_prefix, reported, target)
    if target is not problems:
        problems.extend(target.items)
    return resolved, notes + warned


def _unchecked_params_ok(config: dict[str, Any], keys: dict[str, str], problems: Problems) -> bool:
    """Check the parameters careamics passes on unchecked (any dict is valid to careamics), so
    that ``epochs: two`` or ``lr: 1e-3`` (text to PyYAML) fails here, not on the compute node.

    ``keys`` names, as the spec wrote them, ``max_epochs``, ``limit_train_batches``, the
    parameters of ``optimizer`` and ``lr_scheduler``, ``train_dataloader_params``,
    ``val_dataloader_params`` and ``seed``.
    """
    params = (config.get("training_config") or {}).get("trainer_params") or {}
    ok = True
    epochs = params.get("max_epochs")
    if epochs is not None and (type(epochs) is not int or epochs < 1):
        problems.add(
            keys["max_epochs"],
            f"expected a whole number of epochs >= 1, got {epochs!r}{_text_number_fix(epochs)}",
        )
        ok = False
    steps = params.get("limit_train_batches")
    whole = type(steps) is int and steps >= 1
    fraction = type(steps) is float and 0.0 < steps <= 1.0
    if steps is not None and not (whole or fraction):
        problems.add(
            keys["limit_train_batches"],
            "expected a number of batches >= 1 (or a fraction in (0, 1]), "
            f"got {steps!r}{_text_number_fix(steps)}",
        )
        ok = False
    algorithm = config.get("algorithm_config") or {}
    for name in ("optimizer", "lr_scheduler"):
        parameters = (algorithm.get(name) or {}).get("parameters") or {}
        for key, value in parameters.items():
            fix = _text_number_fix(value)
            if fix:  # torch compares it with numbers: a TypeError once training starts
                problems.add(join_key(keys[name], key), f"{value!r} is text, not a number{fix}")
                ok = False
    return ok and _torch_params_ok(config, keys, problems)


def _torch_params_ok(config: dict[str, Any], keys: dict[str, str], problems: Problems) -> bool:
    """Build what the node builds from the parameters careamics passes to torch as they are
    (the optimizer and scheduler, as careamics' ``configure_optimizers`` does; a DataLoader;
    numpy's seed), so that their own checks run here: ``lr: -1``, ``betas: [0.9]``, a
    scheduler's ``factor: 5.0`` or an unknown DataLoader option each stopped the training on
    the node, after its wait in the queue. torch is loaded already (careamics imports it)."""
    import numpy as np
    import torch

    ok = True

    def refused(key: str, built: Callable[[], Any], what: str) -> Any:
        nonlocal ok
        try:
            return built()
        except (ValueError, TypeError, IndexError, KeyError) as error:
            problems.add(key, f"{what} refuses it: {error}")
            ok = False
            return None

    algorithm = config.get("algorithm_config") or {}
    optimizer, scheduler = algorithm.get("optimizer") or {}, algorithm.get("lr_scheduler") or {}
    optimizer_class = getattr(torch.optim, str(optimizer.get("name")))
    scheduler_class = getattr(torch.optim.lr_scheduler, str(scheduler.get("name")))
    weights = [torch.nn.Parameter(torch.zeros(1))]
    made = refused(
        keys["optimizer"],
        lambda: optimizer_class(weights, **(optimizer.get("parameters") or {})),
        f"torch.optim.{optimizer_class.__name__}",
    )
    if made is not None:
        refused(
            keys["lr_scheduler"],
            lambda: scheduler_class(made, **(scheduler.get("parameters") or {})),
            f"torch.optim.lr_scheduler.{scheduler_class.__name__}",
        )
    data = config.get("data_config") or {}
    samples = torch.utils.data.TensorDataset(torch.zeros(1))

    def loader(given: dict[str, Any]) -> Callable[[], Any]:
        return lambda: torch.utils.data.DataLoader(samples, batch_size=1, **given)

    for which in ("train_dataloader_params", "val_dataloader_params"):
        refused(keys[which], loader(data.get(which) or {}), "torch's DataLoader")
    seed = data.get("seed")
    if seed is not None:
        refused(keys["seed"], lambda: np.random.RandomState(seed), "numpy")  # (Lightning's)
    return ok


#: A number as YAML 1.2 (and JSON, and Python) reads it. PyYAML reads YAML 1.1, where an
#: exponent needs a dot and a sign (``1.0e-3``, ``5.0e+1``): ``lr: 1e-3`` arrives as text.
_NUMBER = re.compile(
    r"(?P<mantissa>[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))"
    r"(?:(?P<e>[eE])(?P<sign>[-+]?)(?P<power>[0-9]+))?"
)


def _non_finite(value: Any, key: str, problems: Problems) -> bool:
    """Report every NaN or infinity (``.nan``, ``.inf`` in YAML) below ``key``; True if any.

    careamics' JSON dump of its configuration writes them as null, which then means "not
    set": ``epochs: .nan`` validated and trained for Lightning's default of 1000 epochs."""
    if isinstance(value, float) and not math.isfinite(value):
        problems.add(key, f"{value!r} is not a finite number: write a number")
        return True
    if isinstance(value, dict):
        found = [_non_finite(item, join_key(key, name), problems) for name, item in value.items()]
        return any(found)
    if isinstance(value, list):
        found = [
            _non_finite(item, join_key(key, index), problems) for index, item in enumerate(value)
        ]
        return any(found)
    return False


def _text_number_fix(value: object) -> str:
    """How to write ``value`` as a number, for text that reads as one (else "")."""
    match = _NUMBER.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        return ""
    written = value
    if match["e"]:
        mantissa = match["mantissa"] if "." in match["mantissa"] else f"{match['mantissa']}.0"
        written = f"{mantissa}{match['e']}{match['sign'] or '+'}{match['power']}"
    if written == value:
        return f": write {value} without quotes"
    return f": write {written} (to PyYAML, a number with an exponent needs a dot and a sign)"


def _validated(
    build: Callable[[], Any],
    fallback_key: str,
    key_of: Callable[[str, tuple[Any, ...]], str],
    problems: Problems,
) -> tuple[dict[str, Any] | None, list[str]]:
    """Run a careamics constructor; map its validation errors to spec keys."""
    import pydantic

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            config = build()
        except pydantic.ValidationError as error:
            for item in error.errors():
                if item["type"] == "default_factory_not_called":
                    continue  # a consequence of another error in the same model
                loc = tuple(item["loc"])
                if item["type"] == "extra_forbidden":
                    model = _model_at(error.title, loc[:-1])
                    valid = list(model.model_fields) if model is not None else []
                    reason = unknown_key_reason(loc[-1], valid) if valid else "unknown key"
                    problems.add(key_of(error.title, loc), reason)
                    continue
                message = item["msg"].removeprefix("Value error, ")
                problems.add(key_of(error.title, loc), f"careamics: {message}")
            return None, []
        except (ValueError, TypeError, KeyError) as error:
            problems.add(fallback_key or "-", f"careamics: {error}")
            return None, []
    notes = [f"careamics: {warning.message}" for warning in caught]
    return config.model_dump(mode="json"), notes


def _model_at(title: str, loc: tuple[Any, ...]) -> Any:
    """The careamics model class at ``loc`` below the model named ``title`` (best effort, for
    suggestions: None when the path cannot be followed, e.g. through lists)."""
    import typing

    import careamics.config as config_module
    import pydantic
    from careamics.config.configuration import Configuration
    from careamics.config.n2v_configuration import N2VConfiguration

    models: dict[str, Any] = {"N2VConfiguration": N2VConfiguration, "Configuration": Configuration}
    model: Any = models.get(title) or getattr(config_module, title, None)
    if loc and loc[0] in ALGORITHMS:  # the union's tag
        model = N2VConfiguration if loc[0] == "n2v" else Configuration
        loc = loc[1:]

    def is_model(candidate: Any) -> bool:
        return isinstance(candidate, type) and issubclass(candidate, pydantic.BaseModel)

    for part in loc:
        if not is_model(model) or part not in model.model_fields:
            return None
        annotation = model.model_fields[part].annotation
        candidates = [annotation, *typing.get_args(annotation)]
        model = next((c for c in candidates if is_model(c)), None)
    return model if is_model(model) else None


def _report_unknown(
    given: Any, loc: tuple[Any, ...], prefix: str, reported: set[str], problems: Problems
) -> None:
    """Unknown keys by careamics' schema, for a configuration that did not validate."""
    if not isinstance(given, dict):
        return
    model = _model_at("", loc)
    if model is None or model.model_config.get("extra") == "allow":
        return
    for key, value in given.items():
        path = join_key(prefix, key)
        if key not in model.model_fields:
            if path not in reported:
                problems.add(path, unknown_key_reason(key, list(model.model_fields)))
        else:
            _report_unknown(value, (*loc, key), path, reported, problems)


def _short_key(title: str, loc: tuple[Any, ...]) -> str:
    """The short-form key a careamics error is about (``training`` when it is not one key)."""
    if title in _TITLE_TO_KEY:
        path = join_key("training", _TITLE_TO_KEY[title])
        for part in loc:
            path = join_key(path, part)
        return path
    for part in reversed(loc):
        if isinstance(part, str):
            key = _FIELD_TO_KEY.get(part, part)
            if key in _SHORT_KEYS:
                return join_key("training", key)
    return "training"


#: careamics models whose fields a short-form dict parameter sets directly.
_TITLE_TO_KEY = {"UNetConfig": "model_params"}
_SHORT_KEYS = frozenset(
    {
        *ALIASES,
        "axes",
        "patch_size",
        "batch_size",
        "augmentations",
        "n_val_patches",
        "in_memory",
        "channels",
        "n_channels",
        "n_channels_in",
        "n_channels_out",
        "target_axes",
        "normalization",
        "normalization_params",
        "patch_filter_config",
        "use_n2v2",
        "roi_size",
        "masked_pixel_percentage",
        "struct_n2v_axes",
        "struct_n2v_span",
        "num_workers",
        "seed",
        "experiment_name",
        "optimizer",
        "lr_scheduler",
    }
)


def _report_dropped(given: Any, resolved: Any, prefix: str, problems: Problems) -> None:
    """Keys careamics silently ignored (pydantic's default ``extra='ignore'``): typos, usually."""
    if isinstance(given, dict) and isinstance(resolved, dict):
        for key, value in given.items():
            if key not in resolved:
                problems.add(join_key(prefix, key), unknown_key_reason(key, list(resolved)))
            else:
                _report_dropped(value, resolved[key], join_key(prefix, key), problems)
    elif isinstance(given, list) and isinstance(resolved, list) and len(given) == len(resolved):
        for index, (item, resolved_item) in enumerate(zip(given, resolved, strict=True)):
            _report_dropped(item, resolved_item, join_key(prefix, index), problems)
