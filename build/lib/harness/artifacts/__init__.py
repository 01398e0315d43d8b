"""Builds to measure: a model file plus the manifest that says what it is."""

from harness.artifacts.manifest import Artifact, InputSpec, Manifest, load_artifact, manifest_path_for

__all__ = ["Artifact", "InputSpec", "Manifest", "load_artifact", "manifest_path_for"]
