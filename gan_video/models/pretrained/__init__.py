"""Frozen pretrained text encoders (``text.name: minilm`` or ``clip``), one role per module.

A :class:`~.encoder.FrozenTextEncoder` maps caption strings to sentence embeddings
``[B, text.out_dim]`` in two parts: a frozen **backbone** (all-MiniLM-L6-v2 or the text tower of an
open_clip CLIP) gives one fixed, L2-normalised embedding per caption, and a small trainable **head**
maps it to ``text.out_dim``.

- :mod:`.encoder`: the ``nn.Module`` with its trainable head (what ``build_text_encoder`` returns);
- :mod:`.backbones`: the frozen networks, loaded once per process and weights, outside the module tree;
- :mod:`.embedding_cache`: each caption embedded once, kept in memory and on disk (file layout there).

Where the weights come from (``text.pretrained``, ``$GAN_VIDEO_MINILM``,
``$GAN_VIDEO_CLIP_WEIGHTS``, the MiniLM package, open_clip tags) is :mod:`gan_video.weights_text`.
"""
