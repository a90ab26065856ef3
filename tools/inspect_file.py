"""Report the provenance label and watermark of files: see `python tools/inspect_file.py --help` (same as
`gan-video-inspect`). Not named inspect.py: a script's folder comes first on sys.path, and a
tools/inspect.py would shadow the standard library's `inspect` for every script in tools/."""
from gan_video.tools.inspect import main

if __name__ == "__main__":
    main()
