"""``gan-video fit|validate|test|predict --config configs/X.yaml``: the LightningCLI entry point."""
from __future__ import annotations

import sys
import warnings
from pathlib import Path

import torch
from pytorch_lightning import LightningDataModule
from pytorch_lightning.cli import LightningCLI

from .checkpoints import read_checkpoint
from .models.retired import drop_retired
from .module import TextToVideoGAN
from .tools import one_line_errors


class GanVideoCLI(LightningCLI):
    def add_arguments_to_parser(self, parser) -> None:
        # the data decides the clip size; the model is built to match it
        parser.link_arguments("data.init_args.resolution", "model.resolution")
        parser.link_arguments("data.init_args.frames", "model.frames")
        parser.add_argument("--threads", type=int, default=0,
                            help="torch intra-op threads (0 = torch's default)")

    def _parse_ckpt_path(self) -> None:
        # LightningCLI reads --ckpt_path's hyperparameters before anything else: the safe reader
        # looks first, so an unsafe or unreadable file is one clear error (and runs nothing)
        # (and the hyperparameters of options removed since it was written are dropped, or refused
        # by name: gan_video.models.retired) before Lightning's parser merges them into the config
        sub = self.config.get("subcommand")
        path = self.config[sub].get("ckpt_path") if sub else None
        if not (path and Path(path).is_file()):
            return
        hparams = read_checkpoint(path).get("hyper_parameters") or {}
        hparams.pop("_instantiator", None)
        if not hparams:
            return
        hparams = drop_retired(hparams, repr(path))
        try:
            self.config = self.parser.parse_object({sub: {"model": hparams}}, self.config)
        except SystemExit:
            sys.stderr.write(f"the model settings saved in {path} do not parse (see above)\n")
            raise

    def before_instantiate_classes(self) -> None:
        threads = self.config.get(self.subcommand, self.config).get("threads", 0)
        if threads:
            torch.set_num_threads(threads)


def main(args: list[str] | None = None) -> None:
    # Lightning warns that a checkpoint of a manually optimised module holds the weights after the
    # step; that is what an exact resume needs (tests/test_kill_resume.py), so say nothing
    warnings.filterwarnings("ignore", message="Using ModelCheckpoint with manual optimization")
    # ... and that a mid-epoch resume is unreliable because the DataLoader has no state_dict: our data
    # modules resume their own order (data/resumable.py), which the same test checks batch for batch
    warnings.filterwarnings("ignore", message="You're resuming from a checkpoint that ended before the epoch ended")
    with one_line_errors("gan-video"):
        # any LightningDataModule by class_path: gan_video.data.ShapesDataModule, gan_video.data.VideoDataModule
        GanVideoCLI(TextToVideoGAN, LightningDataModule, subclass_mode_data=True,
                    save_config_kwargs={"overwrite": True}, args=args)


if __name__ == "__main__":
    main()
