"""Reading and writing backbone weights: official LipSim checkpoints (:mod:`.official`) and lipsim-tm exports
(:mod:`.export`), with strict loading (:mod:`.strict`), safe file I/O (:mod:`.io`) and format detection
(:mod:`.auto`)."""
