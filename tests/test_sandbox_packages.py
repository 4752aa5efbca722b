"""The sandbox's package list: what a site may ask for, and what an image records."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandbox import packages


def test_a_site_lists_packages_on_the_command_line_and_in_a_file(tmp_path: Path) -> None:
    listing = tmp_path / "sandbox-requirements.txt"
    listing.write_text("# what our analysts use\nstatsmodels>=0.14\n\nnetworkx  # graphs\n")
    env = {packages.FILE_ENV: str(listing)}
    assert packages.requested("scikit-learn, sympy", env) == [
        "scikit-learn",
        "sympy",
        "statsmodels>=0.14",
        "networkx",
    ]
    assert packages.requested(None, {}) == []


@pytest.mark.parametrize(
    "spec", ["-e .", "--index-url=http://x", "pkg @ https://example.com/p.whl", "not a spec!"]
)
def test_only_named_requirements_from_the_index(spec: str) -> None:
    with pytest.raises(packages.PackageSpecError):
        packages.parse(spec)


def test_a_missing_packages_file_is_an_error_that_names_it(tmp_path: Path) -> None:
    gone = tmp_path / "gone.txt"
    with pytest.raises(packages.PackageSpecError, match="gone.txt"):
        packages.requested(None, {packages.FILE_ENV: str(gone)})


def test_a_site_spec_replaces_the_default_of_the_same_name() -> None:
    merged = packages.merged(packages.DEFAULT_PACKAGES, ["NumPy<2", "scikit-learn"])
    assert merged[-2:] == ["NumPy<2", "scikit-learn"]
    assert "numpy" not in merged and len(merged) == len(packages.DEFAULT_PACKAGES) + 1


def test_the_label_records_versions_and_reads_back() -> None:
    installed = {"numpy": "2.3.1", "scikit-learn": "1.7.0", "joblib": "1.5"}
    label = packages.label_value(["numpy", "scikit_learn>=1.5"], installed)
    assert label == "numpy==2.3.1,scikit-learn==1.7.0"
    recorded = packages.from_label(label)
    assert packages.describe(recorded) == "numpy 2.3.1, scikit-learn 1.7.0"
    assert packages.missing(["scikit-learn", "sympy"], recorded) == ["sympy"]
    # An image from before packages were recorded: the defaults, and nothing else.
    assert packages.from_label(None) is None
    assert packages.missing(["pandas", "scikit-learn"], None) == ["scikit-learn"]
    assert packages.describe(None) == "numpy, pandas, matplotlib and scipy"
