"""Pinned registry sources and the recipe that turns each into an ONNX model.

Every source is fetched by its ordinary package client (npm, pip) at an exact version, and both
the fetched package and the model file inside it are checked against the sha256 recorded here.
Bump ``recipe_version`` of a model whenever its conversion changes: cached ONNX files built by
an older recipe are then rebuilt on the next run.
"""

from dataclasses import dataclass, field

from dali_trt_ros.errors import ConfigError


@dataclass(frozen=True)
class RegistrySource:
    """One package at an exact version, and the model file inside it."""

    key: str
    client: str            # 'npm' or 'pip'
    package: str
    version: str
    filename: str          # the package file as the client saves it
    sha256: str            # of ``filename``
    member: str            # path of the model file inside the package archive
    member_sha256: str
    license: str


@dataclass(frozen=True)
class ModelRecipe:
    """How to produce one ONNX model, and what it is."""

    name: str
    builder: str           # 'tflite' (convert a source's TFLite) or 'deeplab' (generate)
    onnx: str              # file name inside the model cache
    trained: bool
    recipe_version: int
    source: str = ''       # key into SOURCES; empty for generated models
    byte_range: tuple = ()  # (start, end) of the TFLite inside the member, when packed
    options: dict = field(default_factory=dict)


SOURCES = {
    source.key: source for source in (
        RegistrySource(
            key='mediapipe_objectron_npm',
            client='npm',
            package='@mediapipe/objectron',
            version='0.4.1675468480',
            filename='mediapipe-objectron-0.4.1675468480.tgz',
            sha256='fc3e37b326b05e8f596099c90b3e0931b05a56cd3160b9ac450b621794bac94c',
            member='package/objectron_solution_packed_assets.data',
            member_sha256='470986ca5df183f41698da6de74b027d838fe289d77b5ab094497d350bee664e',
            license='Apache-2.0',
        ),
        RegistrySource(
            key='mediapipe_wheel',
            client='pip',
            package='mediapipe',
            version='0.10.21',
            filename='mediapipe-0.10.21-cp311-cp311-manylinux_2_28_x86_64.whl',
            sha256='05dc4a9e593655a79558d05d6227d31018c2537a4bd3362b51e230cf22aecfe3',
            member='mediapipe/modules/selfie_segmentation/selfie_segmentation.tflite',
            member_sha256='9ee168ec7c8f2a16c56fe8e1cfbc514974cbbb7e434051b455635f1bd1462f5c',
            license='Apache-2.0',
        ),
    )
}

# The objectron asset bundle packs the OpenImages-v4 label map (bytes 0..184) and the SSD
# TFLite (bytes 184..9987912); the offsets are those its loader script lists.
OBJECTRON_LABEL_MAP_RANGE = (0, 184)
OBJECTRON_SSD_RANGE = (184, 9987912)

MODELS = {
    recipe.name: recipe for recipe in (
        ModelRecipe(
            name='ssd_mobilenetv2_oidv4',
            builder='tflite',
            onnx='ssd_mobilenetv2_oidv4.onnx',
            trained=True,
            recipe_version=1,
            source='mediapipe_objectron_npm',
            byte_range=OBJECTRON_SSD_RANGE,
        ),
        ModelRecipe(
            name='selfie_segmentation',
            builder='tflite',
            onnx='selfie_segmentation.onnx',
            trained=True,
            recipe_version=1,
            source='mediapipe_wheel',
        ),
        ModelRecipe(
            name='deeplabv3_mobilenetv2_untrained',
            builder='deeplab',
            onnx='deeplabv3_mobilenetv2_untrained.onnx',
            trained=False,
            recipe_version=1,
            options={'num_classes': 21, 'height': 512, 'width': 512, 'seed': 20240},
        ),
    )
}


def model_recipe(name):
    """Return the recipe of a known model, or raise ConfigError listing the known names."""
    try:
        return MODELS[name]
    except KeyError:
        raise ConfigError(f'unknown model {name!r}; known models: {", ".join(sorted(MODELS))} '
                          '(prepare_models --list)') from None
