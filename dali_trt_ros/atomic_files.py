"""One way to write a file so readers never see part of it (models, engines, caches, records)."""

import os
import tempfile


def write_atomically(path, data, mode=None):
    """Write bytes to ``path`` so readers see the old file or the whole new one, never a part.

    The data goes to a temporary file in the same folder (created if missing), is flushed to
    disk, then renamed over ``path`` (os.replace is atomic within one file system). ``mode``
    sets the permissions first (mkstemp makes 0600 files). Raises OSError; the temporary file
    is removed on any failure.
    """
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    handle, temp_path = tempfile.mkstemp(prefix='.' + os.path.basename(path) + '.',
                                         suffix='.tmp', dir=directory)
    try:
        with os.fdopen(handle, 'wb') as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        if mode is not None:
            os.chmod(temp_path, mode)
        os.replace(temp_path, path)
    except BaseException:
        if os.path.exists(temp_path):
            os.unlink(temp_path)
        raise
