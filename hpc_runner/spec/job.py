"""Job specs: one YAML file describing one training, validated as a whole before anything runs.

A job spec::

    name: n2v_demo                 # the run's name (made safe for paths); default: file name
    training:                      # short form, through careamics' own factories ...
      algorithm: n2v               # n2v | care | n2n
      axes: YX
      patch_size: [64, 64]
      batch_size: 16
      epochs: 20                   # num_epochs
      steps: 10                    # num_steps: batches per epoch
      seed: 42                     # + any parameter of create_advanced_<algorithm>_config
    # training:                    # ... or a full careamics configuration
    #   config: careamics_config.yml   # (a mapping inline, or a file saved by careamics)
    data:                          # paths relative to this file
      train: data/noisy.tif        # TIFF (file or directory), .npy/.npz, .zarr,
      val: null                    #   HDF5 as "file.h5:/group/dataset"
      train_target: null           # care / n2n: the clean or second noisy images
      val_target: null
    evaluate:
      ground_truth: data/clean.tif # optional: PSNR before/after denoising
    cluster:
      profile: gpu                 # a slurm_templates/ profile (hpc-runner profiles)
      timeout_min: 30              # + overrides of any profile field
    after:                         # optional, once the training is DONE (spec_after):
      predict: {tile_size: [256, 256]}     # denoise images (default: data.train)
      export_bmz: {authors: [Your Name]}   # a BioImage Model Zoo archive
    monitor:
      interval_s: 10               # GPU/CPU/memory/throughput samples; 0 = off
    preview: {every_n_epochs: 5}   # optional: pictures during training (default: ~10; or false)

:func:`load_job_spec` checks everything (YAML syntax, keys, types, data files, the profile and
careamics' own validation) and raises one :class:`SpecError` listing every problem as
``FILE: KEY.PATH: reason (fix)``; it writes nothing. Importing this module is cheap and
monitoring-safe: careamics is imported only while resolving the ``training:`` section.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from hpc_runner.spec.after_section import AfterSpec, after_section
from hpc_runner.spec.data_section import (
    DATA_KEYS,
    DataSpec,
    check_data_fits,
    check_ground_truth,
    data_section,
    evaluate_section,
)
from hpc_runner.spec.errors import (
    Problem,
    Problems,
    SpecError,
    check_keys,
    load_yaml_mapping,
    type_name,
)
from hpc_runner.spec.monitor_section import MonitorSpec, monitor_section
from hpc_runner.spec.preview_section import PreviewSpec, preview_section
from hpc_runner.spec.profile_fields import Bad, check_field
from hpc_runner.spec.profiles import PROFILE_KEYS, ClusterProfile, load_profile
from hpc_runner.spec.provenance import SourceFile, file_sha256, provenance
from hpc_runner.stream.runs import RUN_SPEC_FILE, safe_run_name

__all__ = [
    "DataSpec",
    "JobSpec",
    "Problem",
    "SourceFile",
    "SpecError",
    "dump_run_spec",
    "job_spec_from_mapping",
    "load_job_spec",
    "load_run_spec",
]

#: Version of the run.yaml layout written by :func:`dump_run_spec`.
RUN_SPEC_VERSION = 1
SPEC_KEYS = ("name", "training", "data", "evaluate", "cluster", "after", "monitor", "preview")
DEFAULT_PROFILE = "local"


@dataclass(frozen=True)
class JobSpec:
    """A validated, fully resolved job: plain data that pickles and round-trips through run.yaml.

    Parameters
    ----------
    name : str
        The run's name, safe as a path component.
    careamics : dict
        The full careamics configuration as careamics saves it (JSON-able).
    data : DataSpec
        The training data.
    profile : ClusterProfile
        The cluster profile with the spec's overrides applied.
    profile_overrides : dict
        The overrides as written in the spec's ``cluster:`` section.
    source : str
        The spec file (absolute).
    ground_truth : str or None
        A clean image to report PSNR against (``evaluate.ground_truth``), absolute.
    notes : tuple of str
        Warnings careamics gave while resolving the configuration (worth showing the user).
    after : AfterSpec or None
        Prediction and model export once the training is DONE (``after:``, see spec_after).
    source_sha256 : str or None
        SHA-256 of the spec file's bytes when it was validated (a sweep run: its base spec).
    sweep : SourceFile or None
        The sweep file a sweep run was made from.
    monitor : MonitorSpec
        How often the node samples GPU, CPU, memory and throughput (``monitor:``).
    preview : PreviewSpec
        Preview pictures during training (``preview:``, see spec_preview).
    """

    name: str
    careamics: dict[str, Any]
    data: DataSpec
    profile: ClusterProfile
    profile_overrides: dict[str, Any] = field(default_factory=dict)
    source: str = ""
    ground_truth: str | None = None
    notes: tuple[str, ...] = ()
    after: AfterSpec | None = None
    source_sha256: str | None = None
    sweep: SourceFile | None = None
    monitor: MonitorSpec = field(default_factory=MonitorSpec)
    preview: PreviewSpec = field(default_factory=PreviewSpec)

    @property
    def algorithm(self) -> str:
        """``n2v``, ``care`` or ``n2n``."""
        return str(self.careamics["algorithm_config"]["algorithm"])


def load_job_spec(path: str | os.PathLike[str], *, profile: str | None = None) -> JobSpec:
    """Read and validate a job spec; ``profile`` replaces its ``cluster.profile`` (``--profile``).

    Raises
    ------
    SpecError
        With every problem found (syntax, unknown keys, types, missing data files, unknown
        profile, careamics validation), each naming the file and the key path.
    """
    spec_path = Path(path).expanduser().absolute()
    problems = Problems(os.fspath(path))
    raw = load_yaml_mapping(spec_path, problems)
    if raw is None:
        raise SpecError(problems.items)
    try:
        spec = job_spec_from_mapping(raw, spec_path, profile=profile, file_label=os.fspath(path))
    except SpecError as error:  # duplicate keys the YAML reader found come first
        raise SpecError([*problems.items, *error.problems]) from None
    problems.raise_if_any()
    return spec


def job_spec_from_mapping(
    raw: dict[str, Any],
    spec_path: str | os.PathLike[str],
    *,
    profile: str | None = None,
    file_label: str | None = None,
    sweep_file: str | os.PathLike[str] | None = None,
) -> JobSpec:
    """Validate a job spec already read into a mapping (a sweep's base with overrides applied).

    Relative paths in ``raw`` are relative to ``spec_path``'s directory; problems name
    ``file_label`` (default: ``spec_path``) and the key path. ``spec_path`` and, for a sweep's
    run, ``sweep_file`` (when there is one) are recorded with their hashes as its provenance.

    Raises
    ------
    SpecError
        With every problem found, as :func:`load_job_spec`.
    """
    from hpc_runner.spec.training_section import SUPERVISED, resolve_training

    spec_path = Path(spec_path).expanduser().absolute()
    path = file_label if file_label is not None else str(spec_path)
    problems = Problems(path)
    check_keys(raw, SPEC_KEYS, "", problems)

    name = raw.get("name", spec_path.stem)
    if not isinstance(name, str) or not name.strip():
        problems.add("name", f"expected a non-empty string, got {type_name(name)}")
        name = spec_path.stem
    name = safe_run_name(name.strip())

    data = data_section(raw.get("data"), spec_path.parent, problems)
    ground_truth = evaluate_section(raw.get("evaluate"), spec_path.parent, problems)
    job_profile, overrides = _cluster_section(raw.get("cluster"), profile, str(path), problems)

    data_type = data.data_type if data is not None else "array"
    careamics: dict[str, Any] | None = None
    notes: list[str] = []
    if "training" not in raw:
        problems.add("training", "missing (add 'training:' with 'algorithm: n2v' ... or 'config:')")
    else:
        careamics, notes = resolve_training(
            raw["training"],
            name=name,
            data_type=data_type,
            spec_dir=spec_path.parent,
            problems=problems,
        )
    if careamics is not None and data is not None:
        # a full config may ask for "array" with TIFF files: record what will really be used
        data = replace(data, data_type=careamics["data_config"]["data_type"])
        algorithm = careamics["algorithm_config"]["algorithm"]
        check_data_fits(data, careamics, algorithm in SUPERVISED, problems)
        if ground_truth is not None:
            check_ground_truth(data, ground_truth, problems)
    after = after_section(raw.get("after"), spec_path.parent, careamics, problems)
    monitor = monitor_section(raw.get("monitor"), problems)
    preview = preview_section(raw.get("preview"), careamics, data, problems)
    problems.raise_if_any()
    assert data is not None and careamics is not None and job_profile is not None
    return JobSpec(
        name=name,
        careamics=careamics,
        data=data,
        profile=job_profile,
        profile_overrides=overrides,
        source=str(spec_path),
        ground_truth=ground_truth,
        notes=tuple(notes),
        after=after,
        source_sha256=file_sha256(spec_path),
        sweep=SourceFile.of(sweep_file) if sweep_file and Path(sweep_file).is_file() else None,
        monitor=monitor,
        preview=preview,
    )


def _cluster_section(
    section: Any, profile: str | None, source: str, problems: Problems
) -> tuple[ClusterProfile | None, dict[str, Any]]:
    if section is None:
        section = {}
    if not isinstance(section, dict):
        problems.add("cluster", f"expected a mapping, got {type_name(section)}")
        return None, {}
    name = profile or section.get("profile", DEFAULT_PROFILE)
    if not isinstance(name, str):
        problems.add("cluster.profile", f"expected a profile name, got {type_name(name)}")
        return None, {}
    overrides = {k: v for k, v in section.items() if k != "profile"}
    check_keys(overrides, PROFILE_KEYS, "cluster", problems)
    try:
        resolved = load_profile(
            name, {k: v for k, v in overrides.items() if k in PROFILE_KEYS}, source=source
        )
    except SpecError as error:
        problems.extend(error.problems)
        return None, overrides
    return resolved, overrides


def training_settings(spec: JobSpec) -> dict[str, Any]:
    """What a run of ``spec`` trains with, as ``run.yaml`` records it (:func:`dump_run_spec`):
    its data and careamics configuration, compared by a sweep's resubmission."""
    return {
        "data": {key: getattr(spec.data, key) for key in (*DATA_KEYS, "data_type")},
        "careamics": spec.careamics,
    }


def run_settings(spec: JobSpec) -> dict[str, Any]:
    """What a run of ``spec`` is, as ``run.yaml`` records it: what it trains with
    (:func:`training_settings`), what its results are measured against (``evaluate``) and what
    it does once trained (``after``). Two runs of a sweep that agree on these are one run."""
    return {
        **training_settings(spec),
        "evaluate": {"ground_truth": spec.ground_truth},
        "after": spec.after.to_dict() if spec.after else None,
    }


def dump_run_spec(spec: JobSpec) -> str:
    """The resolved ``run.yaml`` text: what the node needs to run the job, careamics included."""
    import yaml

    settings = run_settings(spec)
    document = {
        "version": RUN_SPEC_VERSION,
        "name": spec.name,
        "source": spec.source,
        "data": settings["data"],
        "evaluate": settings["evaluate"],
        "cluster": {
            "profile": spec.profile.name,
            "overrides": spec.profile_overrides,
            "resolved": {**spec.profile.to_dict(), "source": spec.profile.source},
        },
        "notes": list(spec.notes),
        "after": settings["after"],
        "monitor": spec.monitor.to_dict(),
        "preview": spec.preview.to_dict(),
        "provenance": provenance(SourceFile(spec.source, spec.source_sha256), spec.sweep),
        "careamics": settings["careamics"],
    }
    header = f"# Resolved by hpc-runner from {spec.source}; used on the compute node.\n"
    return header + yaml.safe_dump(document, sort_keys=False, default_flow_style=False)


def load_run_spec(run_dir: str | os.PathLike[str]) -> JobSpec:
    """Read ``<run_dir>/run.yaml`` back (on the compute node); it was validated at submission.

    Raises
    ------
    SpecError
        When the file is missing, unreadable or not a run.yaml of a known version.
    """
    path = Path(run_dir) / RUN_SPEC_FILE
    problems = Problems(path)
    document = load_yaml_mapping(path, problems)
    if document is not None and document.get("version") != RUN_SPEC_VERSION:
        problems.add("version", f"expected {RUN_SPEC_VERSION}: written by another hpc-runner")
    problems.raise_if_any()
    assert document is not None
    try:
        cluster = document["cluster"]
        resolved = _recorded_profile(cluster["resolved"], problems)
        resolved["setup"] = tuple(resolved.get("setup") or ())
        profile = ClusterProfile(name=cluster["profile"], **resolved)
        return JobSpec(
            name=document["name"],
            careamics=document["careamics"],
            data=DataSpec(**document["data"]),
            profile=profile,
            profile_overrides=dict(cluster.get("overrides") or {}),
            source=document.get("source", ""),
            ground_truth=(document.get("evaluate") or {}).get("ground_truth"),
            notes=tuple(document.get("notes") or ()),
            after=AfterSpec.from_dict(document.get("after")),
            source_sha256=(document.get("provenance") or {}).get("spec", {}).get("sha256"),
            sweep=SourceFile.from_dict((document.get("provenance") or {}).get("sweep")),
            monitor=MonitorSpec.from_dict(document.get("monitor")),
            preview=PreviewSpec.from_dict(document.get("preview")),
        )
    except (KeyError, TypeError, ValueError) as error:
        problems.add("-", f"not a valid run.yaml ({error!r}): resubmit the job spec")
        raise SpecError(problems.items) from error


def _recorded_profile(resolved: Any, problems: Problems) -> dict[str, Any]:
    """``run.yaml``'s resolved profile, checked again as a profile file is: the run directory
    may have been changed since (another user's, a copy), and these values go into the batch
    script of a resumed job (a line break in one would run the rest as a command). ``setup``
    is not checked here: a resume takes it from the user's own profile
    (:func:`hpc_runner.control.submit.trusted_profile`)."""
    if not isinstance(resolved, dict):
        problems.add("cluster.resolved", f"expected a mapping, got {type_name(resolved)}")
        problems.raise_if_any()
    for key, value in resolved.items():
        checked = check_field(key, value) if key in PROFILE_KEYS and key != "setup" else None
        if isinstance(checked, Bad):
            problems.add(
                f"cluster.resolved.{key}",
                f"{checked.reason} (run.yaml was changed since hpc-runner wrote it: resubmit "
                "the job spec)",
            )
    problems.raise_if_any()
    return dict(resolved)
