"""Finding the control plane's binaries (no binary is run here: see tests/cluster)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubesteps.testing.control_plane import Assets, AssetsMissing

NAMES = ("etcd", "kube-apiserver", "kubectl", "kube-controller-manager", "helm")


def folder(tmp_path: Path, *names: str) -> Path:
    tmp_path.mkdir(exist_ok=True)
    for name in names:
        binary = tmp_path / name
        binary.write_text("#!/bin/sh\n")
        binary.chmod(0o755)
    return tmp_path


def test_a_kubebuilder_assets_folder_gives_every_binary_it_holds(tmp_path: Path) -> None:
    assets = Assets.find(environ={"KUBEBUILDER_ASSETS": str(folder(tmp_path, *NAMES))})

    assert assets.kube_apiserver == (tmp_path / "kube-apiserver").resolve()
    assert assets.kube_controller_manager == (tmp_path / "kube-controller-manager").resolve()
    assert assets.helm == (tmp_path / "helm").resolve()


def test_the_controller_manager_and_helm_are_optional(tmp_path: Path) -> None:
    assets = Assets.find(folder(tmp_path, "etcd", "kube-apiserver", "kubectl"), environ={})

    assert assets.kube_controller_manager is None
    assert assets.helm is None


def test_a_test_asset_variable_wins_over_the_folder(tmp_path: Path) -> None:
    other = folder(tmp_path / "other", "etcd")
    assets = Assets.find(
        folder(tmp_path / "assets", *NAMES), environ={"TEST_ASSET_ETCD": str(other / "etcd")}
    )

    assert assets.etcd == (other / "etcd").resolve()


def test_missing_binaries_are_named_with_the_fix(tmp_path: Path) -> None:
    with pytest.raises(AssetsMissing) as missing:
        Assets.find(folder(tmp_path, "etcd"), environ={})

    assert f"no kube-apiserver, kubectl in {tmp_path}" in str(missing.value)
    assert "KUBEBUILDER_ASSETS" in str(missing.value)


def test_without_a_folder_or_variables_the_message_says_what_to_set() -> None:
    with pytest.raises(AssetsMissing, match="KUBEBUILDER_ASSETS unset"):
        Assets.find(environ={})


def test_a_test_asset_that_is_not_executable_is_refused(tmp_path: Path) -> None:
    plain = tmp_path / "etcd"
    plain.write_text("not a program")

    with pytest.raises(AssetsMissing, match=f"TEST_ASSET_ETCD={plain} is not an executable"):
        Assets.find(environ={"TEST_ASSET_ETCD": str(plain)})
