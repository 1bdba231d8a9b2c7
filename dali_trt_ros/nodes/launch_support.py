"""Decisions the launch files make, kept here so they are plain Python and unit-tested.

The DDS profile: Fast DDS reads its XML profile from ``FASTDDS_DEFAULT_PROFILES_FILE`` from
version 3 on (ROS 2 Kilted and later) and from ``FASTRTPS_DEFAULT_PROFILES_FILE`` in 2.x
(Humble, Iron, Jazzy). The launch files set the one variable the running distro reads, and
nothing at all when the user has exported either: a profile chosen by the user wins.
"""

# Distributions whose rmw_fastrtps ships Fast DDS 2.x (reads FASTRTPS_DEFAULT_PROFILES_FILE).
FAST_DDS_2_DISTROS = ('foxy', 'galactic', 'humble', 'iron', 'jazzy')
PROFILE_VARIABLES = ('FASTDDS_DEFAULT_PROFILES_FILE', 'FASTRTPS_DEFAULT_PROFILES_FILE')


def profile_variable(distro):
    """Return the environment variable the Fast DDS of ROS 2 `distro` reads its profile from."""
    return ('FASTRTPS_DEFAULT_PROFILES_FILE' if distro.strip().lower() in FAST_DDS_2_DISTROS
            else 'FASTDDS_DEFAULT_PROFILES_FILE')


def dds_profile_environment(default_profile, requested_profile, environ):
    """Return {variable: path} to set for the node; {} when the user already exported one.

    `requested_profile` (the launch argument, '' when not given) is used even if the user
    exported a profile: asking for it on the command line is the more specific choice.
    """
    if not requested_profile and any(environ.get(name) for name in PROFILE_VARIABLES):
        return {}
    return {profile_variable(environ.get('ROS_DISTRO', '')):
            requested_profile or default_profile}


def parse_camera_list(text):
    """Parse the `cameras` launch argument ('front,left' or '[front, left]') to a list."""
    text = text.strip().strip('[]')
    return [name.strip().strip('\'"') for name in text.split(',') if name.strip()]
