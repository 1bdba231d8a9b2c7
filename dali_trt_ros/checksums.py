"""SHA-256 of files and buffers: the one helper the model cache and the engine cache share."""

import hashlib

_CHUNK = 1 << 20


def file_sha256(path):
    """Return the hex SHA-256 of a file, read in chunks (large files stay out of memory)."""
    digest = hashlib.sha256()
    with open(path, 'rb') as stream:
        for block in iter(lambda: stream.read(_CHUNK), b''):
            digest.update(block)
    return digest.hexdigest()


def bytes_sha256(data):
    """Return the hex SHA-256 of an in-memory buffer."""
    return hashlib.sha256(data).hexdigest()
