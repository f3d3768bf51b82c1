"""Speech, OCR and TTS speed: ASR x real time, OCR ms per frame at 720p and 360p, TTS x real time.

    .venv/bin/python bench/speech_ocr.py            # ~60 s of speech, 30 frames per size, 3 rounds
    .venv/bin/python bench/speech_ocr.py --quick    # ~15 s of speech, 5 frames, 1 round (smoke test)

Everything runs on one thread (faster-whisper's cpu_threads, onnxruntime's intra/inter-op
threads), except Piper, whose command line picks its own onnxruntime threads. The speech is
synthesized with the bundled Piper voice (all sentences in one Piper process), so the
recognizer's word error rate on it is printed too. Figures are medians over rounds; results go to bench/out/speech_ocr.json (quick:
speech_ocr_quick.json) and, as one JSON line, to the end of stdout.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
import shutil
import statistics
import time

import cv2
import numpy as np

from duomo.eval.metrics import word_error_rate
from duomo.ocr import TextReader
from duomo.speech import SpeechRecognizer, synthesize, synthesize_many

OUT_DIR = Path(__file__).resolve().parent / "out"
SENTENCES = [
    "The weather is lovely today, so we are going for a walk by the river.",
    "Please open the window in the kitchen before you start cooking dinner.",
    "My brother plays the guitar every evening after he finishes work.",
    "The train to the city leaves from the second platform at half past nine.",
    "She painted the old fence a bright shade of green last summer.",
    "We need more milk, some bread and a dozen eggs from the shop.",
    "The children built a tall castle out of sand on the beach.",
    "Turn left at the church and the library is on your right.",
    "He forgot his umbrella on the bus and got completely soaked.",
    "Our meeting has been moved to Thursday afternoon in the large room.",
    "The cat sleeps on the warm windowsill for most of the day.",
    "A strong wind blew the leaves across the empty playground.",
    "They are planning a trip to the mountains at the end of the month.",
    "The bakery on the corner sells the best apple pie in town.",
    "Remember to water the plants while I am away on holiday.",
    "The museum opens at ten and closes early on Sundays.",
    "Two small boats were sailing slowly across the quiet lake.",
    "Could you tell me the way to the nearest post office?",
    "The music festival attracts thousands of visitors every year.",
    "Dinner will be ready as soon as the potatoes are soft.",
    "He reads the newspaper every morning with a cup of strong coffee.",
    "The garden looks beautiful now that the roses are in bloom.",
    "Please switch off the lights when you leave the office tonight.",
    "The old bridge was closed for repairs during the winter.",
]
CAPTIONS = ["BREAKING NEWS: STORM HITS THE COAST", "Kitchen window sale 42", "Chapter two: the journey"]


def speech_script(seconds: float) -> list[str]:
    """The first sentences of ``SENTENCES`` (repeated if need be) that take about ``seconds``
    to speak, at roughly 2.8 words a second plus a 0.4 s pause each."""
    script, total = [], 0.0
    for sentence in SENTENCES * 4:
        if total >= seconds:
            break
        script.append(sentence)
        total += len(sentence.split()) / 2.8 + 0.4
    return script


def speech_audio(script: list[str]) -> tuple[np.ndarray, float]:
    """The script spoken by the Piper voice in one process, sentences 0.4 s apart:
    (waveform (S,) float32 at 16 kHz, seconds Piper took)."""
    start = time.perf_counter()
    spoken = synthesize_many(script, voice="joe", sample_rate=16000)
    seconds = time.perf_counter() - start
    pause = np.zeros(6400, np.float32)
    return np.concatenate([piece for audio, _ in spoken for piece in (audio, pause)]), seconds


def caption_frame(size: tuple[int, int], text: str, seed: int) -> np.ndarray:
    """A (H, W, 3) RGB frame: a textured, coloured background with a caption in the lower third
    and a smaller label near the top, as a news or tutorial video would show."""
    width, height = size
    rng = np.random.default_rng(seed)
    coarse = rng.integers(40, 200, (height // 16 + 1, width // 16 + 1, 3), dtype=np.uint8)
    frame = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_LINEAR)
    font, thickness = cv2.FONT_HERSHEY_SIMPLEX, max(2, height // 120)
    scale = height / 12 / cv2.getTextSize("X", font, 1.0, thickness)[0][1]
    (text_w, text_h), _ = cv2.getTextSize(text, font, scale, thickness)
    if text_w > 0.9 * width:
        scale *= 0.9 * width / text_w
        (text_w, text_h), _ = cv2.getTextSize(text, font, scale, thickness)
    x, y = (width - text_w) // 2, int(height * 0.85)
    frame[y - text_h - 10 : y + 14, x - 10 : x + text_w + 10] //= 4
    cv2.putText(frame, text, (x, y), font, scale, (255, 255, 255), thickness, cv2.LINE_AA)
    cv2.putText(frame, "LIVE 09:41", (width // 20, height // 10), font, scale / 2, (255, 255, 0), thickness // 2 + 1,
                cv2.LINE_AA)
    return frame


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="15 s of speech, 5 frames, one round (smoke test)")
    parser.add_argument("--rounds", type=int, default=None, help="timed rounds (default 3, quick 1)")
    args = parser.parse_args()
    rounds = args.rounds or (1 if args.quick else 3)
    speech_sec, num_frames = (15.0, 5) if args.quick else (60.0, 30)
    if shutil.which("espeak-ng") is None:
        raise SystemExit("bench/speech_ocr.py needs espeak-ng for its espeak-ng figure")

    script = speech_script(speech_sec)
    transcript = " ".join(script)
    audio, piper_script_sec = speech_audio(script)
    audio_sec = len(audio) / 16000
    recognizer = SpeechRecognizer(num_threads=1)
    reader = TextReader(num_threads=1)
    frames = {size: [caption_frame(size, CAPTIONS[i % len(CAPTIONS)], i) for i in range(num_frames)]
              for size in [(1280, 720), (640, 360)]}
    sentence = SENTENCES[0]

    recognizer.transcribe(audio[: 16000 * 5])  # warm-up: first-call allocations
    reader.read(frames[(640, 360)][0])
    times: dict[str, list[float]] = {"asr": [], "ocr720": [], "ocr360": [], "piper": [], "espeak": []}
    hypothesis = ""
    tts_audio_sec = {}
    for _ in range(rounds):
        start = time.perf_counter()
        segments = recognizer.transcribe(audio)
        times["asr"].append(time.perf_counter() - start)
        hypothesis = " ".join(s.text for s in segments)
        for size, key in [((1280, 720), "ocr720"), ((640, 360), "ocr360")]:
            for frame in frames[size]:
                start = time.perf_counter()
                reader.read(frame)
                times[key].append(time.perf_counter() - start)
        for voice, key in [("joe", "piper"), ("en", "espeak")]:
            start = time.perf_counter()
            spoken, rate = synthesize(sentence, voice=voice)
            times[key].append(time.perf_counter() - start)
            tts_audio_sec[key] = len(spoken) / rate
    wer = word_error_rate(transcript, hypothesis)
    read_720 = [b.text for b in reader.read(frames[(1280, 720)][0])]
    read_360 = [b.text for b in reader.read(frames[(640, 360)][0])]

    asr_sec = statistics.median(times["asr"])
    rows = [
        ("ASR, Whisper tiny.en int8, 1 thread", f"{audio_sec:.1f} s of speech", asr_sec, f"{audio_sec / asr_sec:.1f}x real time"),
        ("OCR 1280x720 frame, 1 thread", f"{len(frames[(1280, 720)])} frames", statistics.median(times["ocr720"]),
         f"{1000 * statistics.median(times['ocr720']):.0f} ms/frame"),
        ("OCR 640x360 frame, 1 thread", f"{len(frames[(640, 360)])} frames", statistics.median(times["ocr360"]),
         f"{1000 * statistics.median(times['ocr360']):.0f} ms/frame"),
        ("TTS piper joe, one sentence", f"{tts_audio_sec['piper']:.2f} s of audio", statistics.median(times["piper"]),
         f"{tts_audio_sec['piper'] / statistics.median(times['piper']):.1f}x real time"),
        ("TTS espeak-ng en, one sentence", f"{tts_audio_sec['espeak']:.2f} s of audio", statistics.median(times["espeak"]),
         f"{tts_audio_sec['espeak'] / statistics.median(times['espeak']):.0f}x real time"),
    ]
    load = os.getloadavg()[0]
    print(f"load average after measuring: {load:.2f} on {os.cpu_count()} cores; medians of {rounds} rounds")
    print(f"{'figure':<38} {'input':<20} {'seconds':>8}  speed")
    for label, what, seconds, speed in rows:
        print(f"{label:<38} {what:<20} {seconds:>8.3f}  {speed}")
    print(f"ASR word error rate on the synthesized speech: {wer:.3f}")
    print(f"Piper, the whole {len(script)}-sentence script in one process (synthesize_many): {piper_script_sec:.1f} s "
          f"for {audio_sec:.0f} s of audio ({audio_sec / piper_script_sec:.1f}x real time)")
    print(f"OCR read (first frame): 720p {read_720}; 360p {read_360}")

    report = {
        "quick": args.quick, "rounds": rounds, "load_average": round(load, 2),
        "asr": {"audio_sec": round(audio_sec, 2), "seconds": round(asr_sec, 3),
                "x_real_time": round(audio_sec / asr_sec, 2), "wer": round(wer, 4),
                "seconds_per_round": [round(t, 3) for t in times["asr"]]},
        "ocr": {"ms_per_frame_720p": round(1000 * statistics.median(times["ocr720"]), 1),
                "ms_per_frame_360p": round(1000 * statistics.median(times["ocr360"]), 1),
                "frames_per_round": num_frames, "read_720p": read_720, "read_360p": read_360},
        "tts": {
            "piper_sentence_sec": round(statistics.median(times["piper"]), 3),
            "piper_audio_sec": round(tts_audio_sec["piper"], 3),
            "piper_x_real_time": round(tts_audio_sec["piper"] / statistics.median(times["piper"]), 2),
            "piper_script_sentences": len(script),
            "piper_script_sec": round(piper_script_sec, 3),
            "piper_script_x_real_time": round(audio_sec / piper_script_sec, 2),
            "espeak_sentence_sec": round(statistics.median(times["espeak"]), 4),
            "espeak_audio_sec": round(tts_audio_sec["espeak"], 3),
            "espeak_x_real_time": round(tts_audio_sec["espeak"] / statistics.median(times["espeak"]), 1),
        },
    }
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    (OUT_DIR / ("speech_ocr_quick.json" if args.quick else "speech_ocr.json")).write_text(json.dumps(report, indent=2))
    print(json.dumps(report))


if __name__ == "__main__":
    main()
