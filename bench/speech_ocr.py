"""Speech, OCR and TTS speed: ASR x real time, OCR ms per frame at 720p and 360p, TTS x real time.

    .venv/bin/python bench/speech_ocr.py            # ~60 s of speech, 30 frames per size, 3 rounds
    .venv/bin/python bench/speech_ocr.py --quick    # ~15 s of speech, 5 frames, 1 round (smoke test)

Everything runs on one thread (faster-whisper's cpu_threads, onnxruntime's intra/inter-op
threads), except Piper, whose command line picks its own onnxruntime threads. The speech is
synthesized with the bundled Piper voice (all sentences in one Piper process), so the
recognizer's word error rate on it is printed too. Figures are medians over rounds; results
go to bench/out/speech_ocr.json (quick: speech_ocr_quick.json) and, as one JSON line, to the
end of stdout.
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


def speech_audio(seconds: float) -> tuple[np.ndarray, list[str], tuple[int, float, float]]:
    """At least ``seconds`` of speech: the first sentences of ``SENTENCES`` (repeated if need
    be) spoken by the Piper voice in one process, 0.4 s apart. Returns (waveform (S,) float32
    at 16 kHz, the sentences used, (sentences Piper spoke, their seconds of audio, seconds
    Piper took))."""
    # about 3.7 words a second: ask for 3.3 a second's worth, then keep what is needed
    script, words = [], 0
    for sentence in SENTENCES * 4:
        if words >= 3.3 * seconds:
            break
        script.append(sentence)
        words += len(sentence.split())
    start = time.perf_counter()
    spoken = synthesize_many(script, voice="joe", sample_rate=16000)
    piper_sec = time.perf_counter() - start
    pieces, total = [], 0
    pause = np.zeros(6400, np.float32)
    for audio, _ in spoken:
        pieces += [audio, pause]
        total += len(audio) + len(pause)
        if total >= seconds * 16000:
            break
    piper_audio_sec = sum(len(audio) for audio, _ in spoken) / 16000
    return np.concatenate(pieces), script[: len(pieces) // 2], (len(script), piper_audio_sec, piper_sec)


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


def measure(fn, wall: list[float], cpu: list[float]):
    """Run ``fn`` once; append its wall seconds and its CPU seconds (this process and the
    child processes it waited for) to the lists; return what it returned. On a busy machine
    the CPU seconds of a one-thread figure are close to its wall time on an idle core."""
    before, start = os.times(), time.perf_counter()
    result = fn()
    wall.append(time.perf_counter() - start)
    after = os.times()
    cpu.append(sum(after[:4]) - sum(before[:4]))  # user, system, children's user, children's system
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="15 s of speech, 5 frames, one round (smoke test)")
    parser.add_argument("--rounds", type=int, default=None, help="timed rounds (default 3, quick 1)")
    args = parser.parse_args()
    rounds = args.rounds or (1 if args.quick else 3)
    speech_sec, num_frames = (15.0, 5) if args.quick else (60.0, 30)
    if shutil.which("espeak-ng") is None:
        raise SystemExit("bench/speech_ocr.py needs espeak-ng for its espeak-ng figure")

    audio, script, (piper_lines, piper_script_audio_sec, piper_script_sec) = speech_audio(speech_sec)
    transcript = " ".join(script)
    audio_sec = len(audio) / 16000
    recognizer = SpeechRecognizer(num_threads=1)
    reader = TextReader(num_threads=1)
    frames = {size: [caption_frame(size, CAPTIONS[i % len(CAPTIONS)], i) for i in range(num_frames)]
              for size in [(1280, 720), (640, 360)]}
    sentence = SENTENCES[0]

    recognizer.transcribe(audio[: 16000 * 5])  # warm-up: first-call allocations
    reader.read(frames[(640, 360)][0])
    times: dict[str, list[float]] = {"asr": [], "ocr720": [], "ocr360": [], "piper": [], "espeak": []}
    cpu: dict[str, list[float]] = {key: [] for key in times}
    hypothesis = ""
    tts_audio_sec = {}
    for _ in range(rounds):
        segments = measure(lambda: recognizer.transcribe(audio), times["asr"], cpu["asr"])
        hypothesis = " ".join(s.text for s in segments)
        for size, key in [((1280, 720), "ocr720"), ((640, 360), "ocr360")]:
            for frame in frames[size]:
                measure(lambda: reader.read(frame), times[key], cpu[key])
        for voice, key in [("joe", "piper"), ("en", "espeak")]:
            spoken, rate = measure(lambda: synthesize(sentence, voice=voice), times[key], cpu[key])
            tts_audio_sec[key] = len(spoken) / rate
    wer = word_error_rate(transcript, hypothesis)
    read_720 = [b.text for b in reader.read(frames[(1280, 720)][0])]
    read_360 = [b.text for b in reader.read(frames[(640, 360)][0])]

    med = {key: statistics.median(values) for key, values in times.items()}
    med_cpu = {key: statistics.median(values) for key, values in cpu.items()}
    rows = [  # (label, input, key, speed from the wall time, speed from the CPU time)
        ("ASR, Whisper tiny.en int8, 1 thread", f"{audio_sec:.1f} s of speech", "asr",
         f"{audio_sec / med['asr']:.1f}x real time", f"{audio_sec / med_cpu['asr']:.1f}x"),
        ("OCR 1280x720 frame, 1 thread", f"{num_frames} frames", "ocr720",
         f"{1000 * med['ocr720']:.0f} ms/frame", f"{1000 * med_cpu['ocr720']:.0f} ms"),
        ("OCR 640x360 frame, 1 thread", f"{num_frames} frames", "ocr360",
         f"{1000 * med['ocr360']:.0f} ms/frame", f"{1000 * med_cpu['ocr360']:.0f} ms"),
        ("TTS piper joe, one sentence", f"{tts_audio_sec['piper']:.2f} s of audio", "piper",
         f"{tts_audio_sec['piper'] / med['piper']:.1f}x real time",
         f"{tts_audio_sec['piper'] / med_cpu['piper']:.1f}x"),
        ("TTS espeak-ng en, one sentence", f"{tts_audio_sec['espeak']:.2f} s of audio", "espeak",
         f"{tts_audio_sec['espeak'] / med['espeak']:.0f}x real time",
         f"{tts_audio_sec['espeak'] / med_cpu['espeak']:.0f}x"),
    ]
    load = os.getloadavg()[0]
    print(f"load average after measuring: {load:.2f} on {os.cpu_count()} cores; medians of {rounds} rounds")
    print(f"{'figure':<38} {'input':<20} {'wall s':>7} {'cpu s':>7}  {'speed (wall)':<18} speed (cpu)")
    for label, what, key, speed, cpu_speed in rows:
        print(f"{label:<38} {what:<20} {med[key]:>7.3f} {med_cpu[key]:>7.3f}  {speed:<18} {cpu_speed}")
    print(f"ASR word error rate on the synthesized speech: {wer:.3f}")
    print(f"Piper, {piper_lines} sentences in one process (synthesize_many): {piper_script_sec:.1f} s for "
          f"{piper_script_audio_sec:.0f} s of audio ({piper_script_audio_sec / piper_script_sec:.1f}x real time)")
    print(f"OCR read (first frame): 720p {read_720}; 360p {read_360}")

    report = {
        "quick": args.quick, "rounds": rounds, "load_average": round(load, 2),
        "asr": {"audio_sec": round(audio_sec, 2), "seconds": round(med["asr"], 3),
                "x_real_time": round(audio_sec / med["asr"], 2), "cpu_seconds": round(med_cpu["asr"], 3),
                "x_real_time_cpu": round(audio_sec / med_cpu["asr"], 2), "wer": round(wer, 4),
                "transcript": transcript, "hypothesis": hypothesis,
                "seconds_per_round": [round(t, 3) for t in times["asr"]]},
        "ocr": {"ms_per_frame_720p": round(1000 * med["ocr720"], 1),
                "ms_per_frame_360p": round(1000 * med["ocr360"], 1),
                "cpu_ms_per_frame_720p": round(1000 * med_cpu["ocr720"], 1),
                "cpu_ms_per_frame_360p": round(1000 * med_cpu["ocr360"], 1),
                "frames_per_round": num_frames, "read_720p": read_720, "read_360p": read_360},
        "tts": {
            "piper_sentence_sec": round(med["piper"], 3),
            "piper_audio_sec": round(tts_audio_sec["piper"], 3),
            "piper_x_real_time": round(tts_audio_sec["piper"] / med["piper"], 2),
            "piper_script_sentences": piper_lines,
            "piper_script_sec": round(piper_script_sec, 3),
            "piper_script_audio_sec": round(piper_script_audio_sec, 2),
            "piper_script_x_real_time": round(piper_script_audio_sec / piper_script_sec, 2),
            "espeak_sentence_sec": round(med["espeak"], 4),
            "espeak_audio_sec": round(tts_audio_sec["espeak"], 3),
            "espeak_x_real_time": round(tts_audio_sec["espeak"] / med["espeak"], 1),
        },
    }
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    (OUT_DIR / ("speech_ocr_quick.json" if args.quick else "speech_ocr.json")).write_text(json.dumps(report, indent=2))
    print(json.dumps(report))


if __name__ == "__main__":
    main()
