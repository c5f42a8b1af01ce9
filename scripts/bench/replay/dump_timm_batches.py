#!/usr/bin/env python3
"""Runs timm's train.py and saves what its first epoch trained on, so other programs can replay it.

    python3 scripts/bench/replay/dump_timm_batches.py /path/to/timm/train.py OUT_DIR -- DATA \
        --model efficientnet_b0 --device cpu --seed 42 --epochs 1 -b 128 -j 2 --img-size 28 \
        --num-classes 10 --warmup-epochs 0 --log-interval 1

writes into OUT_DIR:
- `init.safetensors`: the model's weights as `create_model` made them (before any step);
- `images.u8`: every epoch-0 training batch as the model received it, un-normalized back to the
  uint8 pixels timm's loader produced (N×H×W×3, batch after batch, in training order); the
  un-normalization is checked to land within 0.05 of an integer, so the bytes are exact;
- `labels.u8`: the class of each image, in the same order.

The run itself goes on unchanged and logs as train.py does, so its log is the timm side of a
replay comparison. With `DUMP_AFTER=n` in the environment it instead saves the weights after
update n to `timm-after{n}.safetensors` and stops. Assumes timm's ImageNet mean and std.

It copies train.py with three insertions (after `create_model`, at the top of the batch loop,
after the optimizer step) into a temporary file and runs that, so timm's checkout is untouched.
"""
import os
import subprocess
import sys
import tempfile

AFTER_CREATE = "    if args.head_init_scale is not None:\n"
SAVE_INIT = """    if os.environ.get('DUMP_DIR'):
        import safetensors.torch as _st
        os.makedirs(os.environ['DUMP_DIR'], exist_ok=True)
        _st.save_file({k: v.contiguous() for k, v in model.state_dict().items()},
                      os.path.join(os.environ['DUMP_DIR'], 'init.safetensors'))
"""
BATCH_READY = ("        if args.channels_last:\n"
               "            input = input.contiguous(memory_format=torch.channels_last)\n")
SAVE_BATCH = """        if os.environ.get('DUMP_DIR') and epoch == 0 and not os.environ.get('DUMP_AFTER'):
            _mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1) * 255
            _std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1) * 255
            _pixels = input.float() * _std + _mean
            _off = (_pixels - _pixels.round()).abs().max().item()
            assert _off < 0.05, f'un-normalized pixels {_off} from an integer: not timm mean/std?'
            _u8 = _pixels.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous()
            with open(os.path.join(os.environ['DUMP_DIR'], 'images.u8'), 'ab') as _f:
                _f.write(_u8.numpy().tobytes())
            with open(os.path.join(os.environ['DUMP_DIR'], 'labels.u8'), 'ab') as _f:
                _f.write(target.to(torch.uint8).numpy().tobytes())
"""
AFTER_STEP = "        optimizer.zero_grad()\n        task.update_ema(step=num_updates)\n"
SAVE_STEP = """        if os.environ.get('DUMP_AFTER') and num_updates == int(os.environ['DUMP_AFTER']):
            import safetensors.torch as _st
            _st.save_file({k: v.contiguous() for k, v in model.state_dict().items()},
                          os.path.join(os.environ['DUMP_DIR'], f'timm-after{num_updates}.safetensors'))
            raise SystemExit(0)
"""


def patched(source):
    """train.py's text with the three insertions; exits naming the anchor timm no longer has."""
    for anchor, code in [(AFTER_CREATE, SAVE_INIT + AFTER_CREATE), (BATCH_READY, BATCH_READY + SAVE_BATCH),
                         (AFTER_STEP, AFTER_STEP + SAVE_STEP)]:
        if source.count(anchor) != 1:
            sys.exit(f"train.py: expected one {anchor.strip()!r}; this timm version differs")
        source = source.replace(anchor, code)
    return source


def main():
    if len(sys.argv) < 4 or sys.argv[3] != "--":
        sys.exit(__doc__)
    train_py, out_dir, args = sys.argv[1], os.path.abspath(sys.argv[2]), sys.argv[4:]
    os.makedirs(out_dir, exist_ok=True)
    for name in ("images.u8", "labels.u8"):
        if os.path.exists(os.path.join(out_dir, name)) and not os.environ.get('DUMP_AFTER'):
            sys.exit(f"{out_dir}/{name} exists; batches are appended, so start from an empty folder")
    with open(train_py, encoding="utf-8") as f:
        source = patched(f.read())
    with tempfile.NamedTemporaryFile("w", suffix="_train.py", delete=False) as f:
        f.write(source)
    env = dict(os.environ, DUMP_DIR=out_dir)
    try:
        sys.exit(subprocess.call([sys.executable, f.name, *args], env=env))
    finally:
        os.unlink(f.name)


if __name__ == "__main__":
    main()
