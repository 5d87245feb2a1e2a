"""The command line: exit codes, the JSON contract, user errors without tracebacks."""
import json
import subprocess
import sys

import pytest

from calc.cli import main
from conftest import ROOT, SPECS


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_table_lists_every_layer_and_totals(capsys):
    code, out, err = run(capsys, "analyze", str(SPECS / "alexnet.yaml"))
    assert code == 0 and err == ""
    assert "features.0" in out and "conv2d" in out and "64×55×55" in out
    assert "61,100,840" in out and "714,188,480" in out and "714.19 M" in out
    assert "1,428,376,960" in out
    assert "244,403,360 B (233.08 MiB, fp32)" in out


def test_json_contract(capsys):
    code, out, _ = run(capsys, "analyze", str(SPECS / "alexnet.yaml"), "--format", "json", "--batch", "8")
    doc = json.loads(out)
    assert {"model", "input_shape", "batch", "convention", "output_shape", "totals", "layers"} <= set(doc)
    assert doc["model"] == "alexnet" and doc["batch"] == 8 and doc["convention"] == "standard"
    assert doc["input_shape"] == [3, 224, 224] and doc["output_shape"] == [1000]
    t = doc["totals"]
    assert {"params", "trainable_params", "macs", "flops", "param_bytes", "activation_bytes"} <= set(t)
    assert t["params"] == 61_100_840 and t["macs"] == 8 * 714_188_480
    for layer in doc["layers"]:
        assert {"name", "type", "input_shape", "output_shape", "params", "macs", "flops"} <= set(layer)
        for key in ("params", "macs", "flops"):
            assert type(layer[key]) is int
    assert sum(layer["macs"] for layer in doc["layers"]) == t["macs"]
    assert doc["layers"][0]["name"] == "features.0"


def test_input_override_and_csv(capsys):
    code, out, _ = run(capsys, "analyze", str(SPECS / "alexnet.yaml"), "--input", "3x512x512", "--format", "csv")
    lines = out.splitlines()
    assert lines[0] == "name,type,input_shape,output_shape,params,macs,flops"
    assert lines[1].startswith("features.0,conv2d,3x512x512,64x127x127,23296,")
    assert sum(int(line.split(",")[5]) for line in lines[1:]) == 3_707_333_312


def test_markdown(capsys):
    code, out, _ = run(capsys, "analyze", str(SPECS / "vgg16.yaml"), "--format", "markdown", "--depth", "1")
    assert code == 0 and out.startswith("**vgg16") and "| features |" in out and "138,357,544" in out


@pytest.mark.parametrize("argv, fragment", [
    (["analyze", "/nonexistent/x.yaml"], "no such file"),
    (["analyze", str(SPECS)], "is a directory"),
    (["analyze", str(SPECS / "alexnet.yaml"), "--input", "3xfoo"], "--input"),
    (["analyze", str(SPECS / "alexnet.yaml"), "--input", "3x8x8"], "cannot take input"),
    (["analyze", str(SPECS / "alexnet.yaml"), "--set", "width=2"], "no such variable"),
    (["analyze", str(SPECS / "alexnet.yaml"), "--convention", "nope"], "unknown convention"),
])
def test_user_errors_exit_2(capsys, argv, fragment):
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert err.startswith("error: ") and fragment in err and "Traceback" not in err


@pytest.mark.parametrize("content, fragment", [
    (b"", "empty document"),
    (b"\xff\xfe\x00binary", "not UTF-8"),
    (b"name: [unclosed", "malformed YAML"),
    (b"- a\n- b\n", "must be a mapping"),
    (b"42", "must be a mapping"),
    (b"name: x\ninput: [3, 8, 8]\nlayers:\n  - conv2d: {out: 4, kernel: 0}\n", "layers[0].conv2d.kernel"),
    (b"name: x\ninput: [3, 8, 8]\nlayers:\n  - conv2d: {out: 4, kernal: 3}\n", "did you mean 'kernel'"),
    (b"name: x\ninput: [3, 8, 8]\nlayers:\n  - conv2: {out: 4}\n", "unknown layer type 'conv2'"),
    (b"name: x\ninput: [3, 8, 8]\nlayers:\n  - conv2d: {out: 4, kernel: 3, groups: 2}\n", "not divisible by groups"),
    (b"name: x\ninput: [3, 8, 8]\nlayers:\n  - conv2d: {out: -4, kernel: 3}\n", "greater than or equal to 1"),
    (b"name: x\ninput: [3, 8, 8]\nlayers:\n  - conv2d: {out: 4, kernel: 9}\n", "larger than the padded input"),
    (b"name: x\ninput: [3, 8, 8]\nlayers:\n  - flatten\n  - linear: {out: 4, in: 100}\n", "states in=100"),
    (b"name: x\ninput: [3, 8, 8]\nlayers:\n  - relu: {x: 1}\n", "unknown argument 'x'"),
    (b"name: x\ninput: [3, 8, 8]\nlayers:\n  - conv2d: {out: 4, kernel: 3, bias: maybe}\n", "valid boolean"),
])
def test_bad_files_exit_2_with_location(capsys, tmp_path, content, fragment):
    path = tmp_path / "bad.yaml"
    path.write_bytes(content)
    code, out, err = run(capsys, "analyze", str(path))
    assert code == 2, err
    assert fragment in err and str(path) in err and "Traceback" not in err


def test_error_names_file_line_and_path(capsys, tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("name: x\ninput: [3, 8, 8]\nlayers:\n  - relu\n  - conv2d: {out: 4, kernel: 0}\n")
    code, _, err = run(capsys, "analyze", str(path))
    assert err.startswith(f"error: {path}:5: layers[1].conv2d.kernel: ")


def test_stdin_and_python_m(tmp_path):
    text = (SPECS / "alexnet.yaml").read_text()
    proc = subprocess.run([sys.executable, "-m", "calc", "analyze", "-", "--format", "json"], input=text,
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["totals"]["params"] == 61_100_840


def test_layers_and_schema(capsys):
    code, out, _ = run(capsys, "layers")
    assert code == 0
    for name in ("conv2d", "linear", "maxpool2d", "avgpool2d", "adaptive_avgpool2d", "batchnorm2d",
                 "local_response_norm", "prelu", "softmax", "dropout", "flatten", "identity"):
        assert f"\n{name}  [" in "\n" + out
    code, out, _ = run(capsys, "schema")
    schema = json.loads(out)
    assert schema["required"] == ["name", "layers"]
    # one input or several named ones (a spec gives exactly one of the two)
    assert schema["oneOf"] == [{"required": ["input"]}, {"required": ["inputs"]}]
    assert "item" in schema["$defs"]


def test_verify_without_pytorch_is_a_clear_error(capsys, monkeypatch):
    # Whether or not PyTorch is installed here, make it unimportable.
    import calc
    monkeypatch.setitem(sys.modules, "torch", None)
    monkeypatch.delitem(sys.modules, "calc.oracle", raising=False)
    monkeypatch.delattr(calc, "oracle", raising=False)
    code, out, err = run(capsys, "verify", str(SPECS / "alexnet.yaml"))
    assert code == 2 and out == ""
    assert err.startswith("error: ") and "needs PyTorch" in err and "pip install" in err
    assert "Traceback" not in err


def test_importing_calc_does_not_import_torch():
    proc = subprocess.run([sys.executable, "-c", "import calc, calc.cli, calc.verify, sys; "
                           "calc.analyze(calc.load_spec('specs/alexnet.yaml').build()); "
                           "print('torch' in sys.modules)"], capture_output=True, text=True, cwd=ROOT)
    assert proc.stdout.strip() == "False", proc.stderr


def test_schema_accepts_every_bundled_spec_and_rejects_a_typo(capsys):
    jsonschema = pytest.importorskip("jsonschema")
    yaml = pytest.importorskip("yaml")
    main(["schema"])
    schema = json.loads(capsys.readouterr().out)
    validator = jsonschema.Draft202012Validator(schema)
    for path in sorted(SPECS.glob("*.yaml")):
        errors = list(validator.iter_errors(yaml.safe_load(path.read_text())))
        assert not errors, (path.name, errors[0].message[:300])
    typo = {"name": "x", "input": [3], "layers": [{"conv2d": {"out": 3, "kernal": 3}}]}
    assert list(validator.iter_errors(typo))
