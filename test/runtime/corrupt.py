#!/usr/bin/env python3
"""Writes a broken copy of a safetensors file for the runtime's fault tests:
  corrupt.py IN OUT --drop NAME             without tensor NAME
  corrupt.py IN OUT --reshape NAME D0,D1..  NAME with another shape (same elements)
  corrupt.py IN OUT --set NAME INDEX VALUE  one element (flat index) changed
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "oracle"))
import safetensors_io  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("input")
ap.add_argument("output")
ap.add_argument("--drop")
ap.add_argument("--reshape", nargs=2)
ap.add_argument("--set", nargs=3)
args = ap.parse_args()
tensors, metadata = safetensors_io.read(args.input)
if args.drop:
    del tensors[args.drop]
if args.reshape:
    name, dims = args.reshape
    tensors[name] = tensors[name].reshape([int(d) for d in dims.split(",")])
if args.set:
    name, index, value = args.set
    flat = tensors[name].reshape(-1).copy()
    flat[int(index)] = value
    tensors[name] = flat.reshape(tensors[name].shape)
safetensors_io.write(args.output, tensors, metadata)
