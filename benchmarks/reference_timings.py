"""Timings of the torch-based counting tools on torchvision's ResNet-50, measured by the project's
reference script on this machine type (2-core CPU, torch 2.13.0+cpu, torchvision 0.28.0, thop
0.1.1-2209072238, ptflops 0.7.5, fvcore 0.1.5.post20221221, torchinfo 1.8.0, Python 3.11.7),
copied from the `_meta.timing_resnet50` entry of the reference data
(shared/reference/torchvision_public.json, generated 2026-11-22T04:06:46Z). Median wall seconds
of 3 runs, input 1×3×224×224.

The benchmark quotes these, labelled as reference figures, when the tools are not installed.
"""

PYTHON_STARTUP = 0.0183
MODEL_BUILD = 0.2431            # torchvision.models.resnet50(weights=None)
IMPORT = {                      # import torch and the tool
    "thop": 1.6559,
    "fvcore": 1.1729,
    "torch FlopCounterMode": 1.2173,
    "ptflops (pytorch)": 2.5533,
    "ptflops (aten)": 2.5533,
    "torchinfo": 1.1755,
}
CALL = {                        # one count of an already-built model
    "thop": 0.0743,
    "fvcore": 0.1809,
    "torch FlopCounterMode": 0.0960,
    "ptflops (pytorch)": 0.0942,
    "ptflops (aten)": 0.0716,
    "torchinfo": 0.0635,
}


def whole_process(tool: str) -> float:
    """Start Python, import torch and the tool, build the model, count once."""
    return PYTHON_STARTUP + IMPORT[tool] + MODEL_BUILD + CALL[tool]
