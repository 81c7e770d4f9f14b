"""The model file's contract, without torch: what the exported classifier and segmenter graphs
take and return, their metadata (keys, writer, reader), the stream settings they carry, where a
classifier's segmenter lies, and the compact array encoding of the stored embeddings.

The exporters (:mod:`islr.export`), the engine (:mod:`islr.inference`), the server and the web
page all follow it.
"""

from islr.modelfile.arrays import decode_array, decode_int8_rows, encode_array, encode_int8_rows
from islr.modelfile.metadata import (
    EMBEDDING_NAME,
    EXPORT_FORMAT,
    INPUT_NAME,
    KNOWN_EMBEDDINGS_KEY,
    METADATA_KEY,
    OPSET,
    OUTPUT_NAME,
    PROTOTYPES_KEY,
    RESAMPLE_RULE,
    augment_config,
    embedding_metadata,
    embedding_reference,
    model_metadata,
    onnx_properties,
    parse_metadata,
    read_onnx_metadata,
    recipe_augment,
    recipe_stream,
    reference_from_metadata,
    reference_properties,
    set_metadata,
    set_property,
    stream_config,
)
from islr.modelfile.reference import (
    DUPLICATE_SIMILARITY,
    Calibration,
    EmbeddingReference,
    known_embeddings_from_dict,
)
from islr.modelfile.segmenter import (
    DEFAULT_DECODER,
    SEGMENTER_KEY,
    SEGMENTER_SUFFIX,
    TAGS_NAME,
    segmenter_metadata,
    segmenter_paths,
    segmenter_settings,
    with_stream_settings,
)

__all__ = [
    "DEFAULT_DECODER",
    "DUPLICATE_SIMILARITY",
    "EMBEDDING_NAME",
    "EXPORT_FORMAT",
    "INPUT_NAME",
    "KNOWN_EMBEDDINGS_KEY",
    "METADATA_KEY",
    "OPSET",
    "OUTPUT_NAME",
    "PROTOTYPES_KEY",
    "RESAMPLE_RULE",
    "SEGMENTER_KEY",
    "SEGMENTER_SUFFIX",
    "TAGS_NAME",
    "Calibration",
    "EmbeddingReference",
    "augment_config",
    "decode_array",
    "decode_int8_rows",
    "embedding_metadata",
    "embedding_reference",
    "encode_array",
    "encode_int8_rows",
    "known_embeddings_from_dict",
    "model_metadata",
    "onnx_properties",
    "parse_metadata",
    "read_onnx_metadata",
    "recipe_augment",
    "recipe_stream",
    "reference_from_metadata",
    "reference_properties",
    "segmenter_metadata",
    "segmenter_paths",
    "segmenter_settings",
    "set_metadata",
    "set_property",
    "stream_config",
    "with_stream_settings",
]
