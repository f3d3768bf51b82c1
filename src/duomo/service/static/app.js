// The Duomo page: search, play a hit from its second with the transcript beside it, find videos
// like the one playing, upload.
// Uses only the public REST API (see /docs). No build step, no dependencies.
"use strict";

const TOKEN_KEY = "duomo-token";
const $ = (id) => document.getElementById(id);
let currentVideo = null; // {video_id, transcript, ocr, ...} shown in the player

function token() { return localStorage.getItem(TOKEN_KEY) || ""; }

// <video> and <img> cannot send headers: the token goes in the query string for them.
function withToken(url) {
  const t = token();
  return t ? url + (url.includes("?") ? "&" : "?") + "token=" + encodeURIComponent(t) : url;
}

class NeedToken extends Error {}

async function api(path, options = {}) {
  const headers = Object.assign({}, options.headers || {});
  if (token()) headers["Authorization"] = "Bearer " + token();
  const response = await fetch(path, Object.assign({}, options, { headers }));
  if (response.status === 401) { askForToken(); throw new NeedToken("access token needed"); }
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(typeof body.detail === "string" ? body.detail : response.statusText);
  return body;
}

function askForToken() {
  $("token-form").hidden = false;
  $("token").focus();
}

function formatTime(sec) {
  const s = Math.max(0, Math.floor(sec));
  return Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0");
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key.startsWith("data-")) node.setAttribute(key, value);
    else node[key] = value;
  }
  for (const child of children) node.append(child);
  return node;
}

function showStatus(text, isError = false) {
  $("status").textContent = text;
  $("status").className = isError ? "error" : "muted";
}

// --- search -------------------------------------------------------------------------------

async function search(event) {
  event.preventDefault();
  const q = $("q").value.trim();
  if (!q) return;
  showStatus("Searching…");
  $("result-list").replaceChildren();
  try {
    const params = new URLSearchParams({ q, modality: $("modality").value, k: "10" });
    const data = await api("/api/search?" + params);
    renderResults(data.results);
    showStatus(data.results.length ? `${data.results.length} video(s) for “${q}”` : `Nothing found for “${q}”`);
  } catch (err) {
    if (!(err instanceof NeedToken)) showStatus(err.message, true);
  }
}

// A "more like this" result's hits: the whole video's picture, and what it says and writes.
const KIND_NAMES = { video: "picture", words: "words" };

async function showSimilar(event) {
  event.preventDefault();
  if (!currentVideo) return;
  const like = currentVideo;
  showStatus(`Looking for videos like ${like.name}…`);
  $("result-list").replaceChildren();
  try {
    const params = new URLSearchParams({ k: "10", by: $("similar-by").value });
    const data = await api("/api/videos/" + encodeURIComponent(like.video_id) + "/similar?" + params);
    renderResults(data.results);
    showStatus(data.results.length ? `${data.results.length} video(s) like ${like.name}` : `No other video is like ${like.name}`);
  } catch (err) {
    if (!(err instanceof NeedToken)) showStatus(err.message, true);
  }
}

function renderResults(results) {
  const list = $("result-list");
  for (const video of results) {
    const hits = el("ol", { class: "hits" });
    for (const hit of video.hits) {
      const item = el("li", {
        class: "hit", tabIndex: 0, title: "play from " + formatTime(hit.start_sec),
        "data-video": video.video_id, "data-start": String(hit.start_sec),
      });
      if (hit.thumbnail_url) item.append(el("img", { src: withToken(hit.thumbnail_url), alt: "", loading: "lazy" }));
      item.append(el("span", { class: "time" }, formatTime(hit.start_sec)),
                  el("span", { class: "kind" }, KIND_NAMES[hit.modality] || hit.modality),
                  el("span", { class: "text" }, hit.text));
      const open = () => openVideo(video.video_id, hit);
      item.addEventListener("click", open);
      item.addEventListener("keydown", (e) => { if (e.key === "Enter") open(); });
      hits.append(item);
    }
    list.append(el("li", { class: "video-result", "data-video": video.video_id },
                   el("h3", {}, video.name), hits));
  }
}

// --- player and transcript ------------------------------------------------------------------

let openTicket = 0; // a later click wins over an earlier one still loading

async function openVideo(videoId, hit) {
  const ticket = ++openTicket;
  try {
    if (!currentVideo || currentVideo.video_id !== videoId) {
      const video = await api("/api/videos/" + encodeURIComponent(videoId));
      if (ticket !== openTicket) return;
      currentVideo = video;
      renderTranscript(currentVideo);
      $("player").src = withToken(currentVideo.media_url);
    }
    $("viewer").hidden = false;
    $("viewer-title").textContent = currentVideo.name;
    highlightMatch(hit);
    playFrom(hit ? hit.start_sec : 0);
  } catch (err) {
    if (!(err instanceof NeedToken)) showStatus(err.message, true);
  }
}

function playFrom(sec) {
  const player = $("player");
  const seek = () => {
    player.currentTime = sec;
    player.play().catch(() => {}); // autoplay may be refused; the player stays at the second
  };
  if (player.readyState >= 1) seek();
  else player.addEventListener("loadedmetadata", seek, { once: true });
}

function timedList(list, entries) {
  list.replaceChildren();
  entries.forEach((entry, i) => {
    const item = el("li", { "data-start": String(entry.start_sec), "data-end": String(entry.end_sec), "data-idx": String(i) },
                    el("span", { class: "time" }, formatTime(entry.start_sec)), entry.text);
    item.addEventListener("click", () => playFrom(entry.start_sec));
    list.append(item);
  });
}

function renderTranscript(video) {
  timedList($("transcript"), video.transcript);
  if (!video.transcript.length) $("transcript").append(el("li", { class: "muted" }, "no speech"));
  timedList($("ocr"), video.ocr);
  $("ocr-title").hidden = !video.ocr.length;
}

// The matched line: the one the hit came from (same text and time), else the line playing at its time.
function highlightMatch(hit) {
  for (const item of document.querySelectorAll("#transcript li.matched, #ocr li.matched")) item.classList.remove("matched");
  if (!hit || !currentVideo) return;
  const listId = hit.modality === "ocr" ? "ocr" : "transcript";
  const entries = hit.modality === "ocr" ? currentVideo.ocr : currentVideo.transcript;
  let idx = entries.findIndex((e) => e.text === hit.text && e.start_sec <= hit.start_sec + 0.01 && hit.start_sec < e.end_sec + 0.01);
  if (idx < 0) idx = entries.findIndex((e) => e.start_sec <= hit.start_sec && hit.start_sec < e.end_sec);
  if (idx < 0) return;
  const item = $(listId).querySelector(`li[data-idx="${idx}"]`);
  item.classList.add("matched");
  item.scrollIntoView({ block: "nearest" });
}

function followPlayback() {
  const t = $("player").currentTime;
  for (const item of $("transcript").querySelectorAll("li[data-start]")) {
    const inside = Number(item.dataset.start) <= t && t < Number(item.dataset.end);
    item.classList.toggle("current", inside);
  }
}

// --- upload ---------------------------------------------------------------------------------

function upload(event) {
  event.preventDefault();
  const file = $("upload-file").files[0];
  if (!file) return;
  const form = new FormData();
  form.append("file", file);
  const xhr = new XMLHttpRequest();
  const bar = $("upload-progress");
  bar.hidden = false;
  bar.value = 0;
  $("upload-status").textContent = "uploading…";
  $("upload-status").className = "";
  xhr.upload.addEventListener("progress", (e) => {
    if (e.lengthComputable) bar.value = Math.round((100 * e.loaded) / e.total);
  });
  xhr.addEventListener("load", () => {
    let body = {};
    try { body = JSON.parse(xhr.responseText); } catch (_) { /* not JSON */ }
    if (xhr.status === 401) { askForToken(); uploadError("access token needed"); return; }
    if (xhr.status !== 202) { uploadError(body.detail || xhr.statusText); return; }
    bar.value = 100;
    watchJob(body);
  });
  xhr.addEventListener("error", () => uploadError("the upload failed (connection error)"));
  xhr.open("POST", "/api/videos");
  if (token()) xhr.setRequestHeader("Authorization", "Bearer " + token());
  xhr.send(form);
}

function uploadError(message) {
  $("upload-status").textContent = typeof message === "string" ? message : JSON.stringify(message);
  $("upload-status").className = "error";
  $("upload-status").dataset.state = "failed";
}

async function watchJob(job) {
  const status = $("upload-status");
  status.dataset.job = job.job_id;
  while (true) {
    const stages = Object.entries(job.progress || {}).filter(([, [, total]]) => total > 0)
      .map(([stage, [done, total]]) => `${stage} ${done}/${total}`).join(", ");
    status.textContent = `${job.file}: ${job.status}${stages ? " (" + stages + ")" : ""}`;
    status.dataset.state = job.status;
    if (job.status === "done") { loadLibrary(); return; }
    if (job.status === "failed") { uploadError(`${job.file}: ${job.error}`); return; }
    await new Promise((resolve) => setTimeout(resolve, 700));
    try { job = await api(job.status_url); } catch (err) { uploadError(err.message); return; }
  }
}

// --- library --------------------------------------------------------------------------------

async function loadLibrary() {
  try {
    const [info, videos] = await Promise.all([api("/api/info"), api("/api/videos")]);
    $("library-info").textContent = `${info.num_videos} video(s)` +
      (info.models.length ? " · models: " + info.models.map((m) => m.task).join(", ") : "");
    const list = $("video-list");
    list.replaceChildren();
    for (const video of videos) {
      const item = el("li", { "data-video": video.video_id },
                      `${video.name} (${formatTime(video.duration_sec)})`);
      item.addEventListener("click", () => openVideo(video.video_id, null));
      list.append(item);
    }
  } catch (err) {
    if (!(err instanceof NeedToken)) showStatus(err.message, true);
  }
}

function useToken(event) {
  event.preventDefault();
  localStorage.setItem(TOKEN_KEY, $("token").value.trim());
  $("token-form").hidden = true;
  loadLibrary();
}

$("search-form").addEventListener("submit", search);
$("upload-form").addEventListener("submit", upload);
$("similar-form").addEventListener("submit", showSimilar);
$("token-form").addEventListener("submit", useToken);
$("player").addEventListener("timeupdate", followPlayback);
loadLibrary();
