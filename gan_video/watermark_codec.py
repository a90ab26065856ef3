"""The in-memory H.264 round trip the watermark's embedding simulates (and that
tools/watermark_eval.py uses as an independent re-encoder, with ``asm=None``)."""
from __future__ import annotations

from typing import Optional

import numpy as np

CODEC_CRF = 28                  # the H.264 re-encode the embedding simulates (libx264 through PyAV) ...
RECODE_FPS = 25                 # ... at 25 fps (x264's rate control reads the frame rate: 8 fps codes differently)
DELIVERY_CRF, DELIVERY_FPS = 18, 8   # how gan_video writes a clip (io.write_mp4's defaults), simulated before it
X264_ASM = "MMX2,SSE,SSE2"      # the x264 kernels the codec simulation may use (see h264_roundtrip)


def h264_roundtrip(clip: np.ndarray, crf: int = CODEC_CRF, preset: Optional[str] = None,
                   asm: Optional[str] = X264_ASM, fps: int = 8) -> np.ndarray:
    """``clip`` (uint8 ``[T, H, W, 3]``) encoded with libx264 (yuv420p) at ``crf`` (and x264
    ``preset``, default medium) in memory and decoded again; yuv420p needs even sizes, so an odd
    height or width first loses its last row or column.

    Reproducible from call to call and from machine to machine: one thread, and x264's assembly
    limited to MMX2/SSE/SSE2 (:data:`X264_ASM`), which every x86-64 CPU has. With the CPU's own
    choice of kernels the result is neither: some of x264's SSE3-and-later kernels round
    differently from its C code (measured on 128 and 256 px clips), so the same clip coded
    differently on AVX2 and AVX-512 machines, and on an AVX-512 EPYC the test of same-seed clips
    failed now and then (coded frames one of two ways from call to call; not rechecked there since,
    no such machine at hand). The SSE2 kernels give the C code's frames to the bit (checked on 64 to
    256 px clips against ``asm=0``) at nearly the full speed (``asm=0`` is 3.5x slower at 256 px);
    where x264 has no such kernels (not x86) it reads the names as "no assembly", the C code.
    ``asm``: x264's ``asm`` setting (``"0"``: the C code only; None: x264's own choice, as an
    ordinary encoder runs). ``fps``: the stream's frame rate (x264's rate control reads it)."""
    import io

    import av

    h, w = clip.shape[1:3]
    clip = clip[:, :h - h % 2, :w - w % 2]
    buf = io.BytesIO()
    with av.open(buf, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = clip.shape[2], clip.shape[1], "yuv420p"
        stream.options = {"crf": str(crf), "threads": "1", **({"x264-params": f"asm={asm}"} if asm is not None else {}),
                          **({"preset": preset} if preset else {})}
        for f in clip:
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    buf.seek(0)
    with av.open(buf) as container:
        return np.stack([f.to_ndarray(format="rgb24", threads=1) for f in container.decode(video=0)])


def deliver(clip: np.ndarray) -> np.ndarray:
    """``clip`` as gan_video writes it (io.write_mp4: H.264 CRF 18, 8 fps) and reads it back."""
    return h264_roundtrip(clip, DELIVERY_CRF, fps=DELIVERY_FPS)


def downscaled_reencode(delivered: np.ndarray, scale: float) -> np.ndarray:
    """A delivered clip downscaled by ``scale`` (area, to even sizes) and re-encoded (H.264 at
    :data:`CODEC_CRF`, :data:`RECODE_FPS`), the way a shared clip travels."""
    import cv2

    t, h, w, _ = delivered.shape
    sw, sh = max(2, round(w * scale) // 2 * 2), max(2, round(h * scale) // 2 * 2)
    small = np.stack([cv2.resize(f, (sw, sh), interpolation=cv2.INTER_AREA) for f in delivered])
    return h264_roundtrip(small, CODEC_CRF, fps=RECODE_FPS)
