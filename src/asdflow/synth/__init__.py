"""Built-in synthetic data: a DCASE Task 2 layout dev (and optional eval) set and an
AudioSet-layout external pool, written in exactly the real on-disk formats.

>>> from asdflow.synth import SynthConfig, generate
>>> summary = generate(Path("results/data/synth"), SynthConfig.from_preset("tiny"))  # doctest: +SKIP

See :mod:`asdflow.synth.layout` for the files written and :mod:`asdflow.synth.machines`,
:mod:`asdflow.synth.noise` and :mod:`asdflow.synth.external` for how the audio is made.
"""

from asdflow.synth.config import PRESETS, SynthConfig
from asdflow.synth.layout import SUMMARY_NAME, generate

__all__ = ["SynthConfig", "PRESETS", "generate", "SUMMARY_NAME"]
