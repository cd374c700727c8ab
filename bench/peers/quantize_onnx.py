"""Dynamic int8 quantization of an ONNX model (weights int8 per channel,
activations quantized at run time): onnxruntime.quantization.quantize_dynamic.
    python quantize_onnx.py IN.onnx OUT.onnx"""
import sys

from onnxruntime.quantization import QuantType, quantize_dynamic

quantize_dynamic(sys.argv[1], sys.argv[2], weight_type=QuantType.QInt8, per_channel=True)
print("quantized", sys.argv[2])
