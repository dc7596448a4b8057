"""Write the console's alarm sound, command_center/static/alarm.wav: two short tones, 0.6 s.

Made with the standard library only (`wave`), so the bundled file can be regenerated:
`python tools/make_alarm_sound.py`.
"""

from __future__ import annotations

import math
import struct
import wave
from pathlib import Path

RATE = 16_000
TONES = ((880.0, 0.25), (0.0, 0.05), (1175.0, 0.30))  # (hertz, seconds); 0 Hz is a pause
VOLUME = 0.45
FADE = 0.01  # seconds of fade in and out per tone, so it does not click

OUT = Path(__file__).resolve().parent.parent / "command_center" / "static" / "alarm.wav"


def samples() -> list[int]:
    out: list[int] = []
    for freq, seconds in TONES:
        n = int(RATE * seconds)
        fade = max(1, int(RATE * FADE))
        for i in range(n):
            envelope = min(1.0, i / fade, (n - 1 - i) / fade)
            value = math.sin(2 * math.pi * freq * i / RATE) if freq else 0.0
            out.append(int(32767 * VOLUME * envelope * value))
    return out


def main() -> None:
    with wave.open(str(OUT), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(RATE)
        data = samples()
        wav.writeframes(struct.pack(f"<{len(data)}h", *data))
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
