#!/usr/bin/env python3
"""Rewrites a GGUF model with its weight matrices in another type (BF16, F16, F32, Q8_0),
keeping every metadata key and the F32 norm vectors. The tests use it to make the BF16 and
Q8_0 versions of the default model from its Q4_1 file (values are dequantized to float32 and
re-encoded with round-to-nearest, as llama.cpp's requantizer does).

  python3 scripts/convert_gguf.py SRC.gguf DST.gguf BF16
"""
import sys

import gguf
import gguf.quants as quants
import numpy as np


def convert(src, dst, target_name):
    target = gguf.GGMLQuantizationType[target_name]
    reader = gguf.GGUFReader(src)
    arch = reader.fields["general.architecture"].contents()
    writer = gguf.GGUFWriter(dst, arch)
    for name, field in reader.fields.items():
        if name.startswith("GGUF.") or name == "general.architecture":
            continue
        vtype = field.types[0]
        if vtype == gguf.GGUFValueType.ARRAY:
            writer.add_key_value(name, field.contents(), vtype, sub_type=field.types[-1])
        else:
            writer.add_key_value(name, field.contents(), vtype)
    for t in reader.tensors:
        if t.tensor_type == gguf.GGMLQuantizationType.F32 and len(t.shape) == 1:
            writer.add_tensor(t.name, np.array(t.data, dtype=np.float32))
            continue
        values = quants.dequantize(t.data, t.tensor_type).astype(np.float32)
        data = quants.quantize(values, target)
        writer.add_tensor(t.name, data, raw_dtype=target)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    convert(sys.argv[1], sys.argv[2], sys.argv[3])
