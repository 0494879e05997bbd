// homedesk-server admin page: polls /api/status every 2 s and fills the
// tables.  Every value goes in with textContent (an ID or a reason is
// whatever a peer sent: never markup).
"use strict";

const POLL_MS = 2000;
const $ = (id) => document.getElementById(id);

function duration(ms) {
  let s = Math.floor(ms / 1000);
  if (s < 60) return s + " s";
  let m = Math.floor(s / 60);
  if (m < 60) return m + " min " + (s % 60) + " s";
  let h = Math.floor(m / 60);
  if (h < 48) return h + " h " + (m % 60) + " min";
  return Math.floor(h / 24) + " d " + (h % 24) + " h";
}

function bytes(n) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(1) : n) + " " + units[i];
}

function clock(unix) {
  return new Date(unix * 1000).toLocaleTimeString([], { hour12: false });
}

// cells: strings, or [text, className]
function row(cells) {
  const tr = document.createElement("tr");
  for (const c of cells) {
    const td = document.createElement("td");
    if (Array.isArray(c)) { td.textContent = c[0]; td.className = c[1]; }
    else td.textContent = c;
    tr.appendChild(td);
  }
  return tr;
}

function fill(id, rows, empty, cols) {
  const body = $(id);
  body.replaceChildren();
  if (rows.length === 0) {
    const tr = document.createElement("tr");
    const td = document.createElement("td");
    td.colSpan = cols; td.className = "empty"; td.textContent = empty;
    tr.appendChild(td);
    body.appendChild(tr);
    return;
  }
  for (const r of rows) body.appendChild(row(r));
}

function render(s) {
  $("version").textContent = s.server.version;
  $("role").textContent = s.server.role;
  $("uptime").textContent = duration(s.server.uptime_s * 1000);
  $("updated").textContent = "updated " + clock(s.server.now);
  document.title = "homedesk-server (" + s.server.role + ")";

  $("pubkey").textContent = s.key.public || "(none: this server signs nothing)";
  $("copy").hidden = !s.key.public;
  $("keyfile").textContent = s.key.file
    ? "from " + s.key.file + (s.key.check ? "; clients must present it" : "; not checked")
    : "";

  fill("ports", s.ports.map((p) => [
    p.name, p.proto.toUpperCase() + " " + p.port, p.bind,
    [p.state, "state " + p.state.replace(" ", "-")], [p.detail || "", "wrap"],
  ]), "no listeners", 5);

  if (s.peers.role) {
    $("peer-count").textContent = s.peers.online;
    fill("peers", s.peers.list.map((p) => [
      [p.id, "mono"], duration(p.last_seen_ms) + " ago", p.nat, [p.addr, "mono"], p.link,
    ]), "no peer online", 5);
  } else {
    fill("peers", [], "this server runs no rendezvous role", 5);
  }

  if (s.relay.role) {
    $("session-count").textContent = s.relay.active;
    fill("sessions", s.relay.sessions.map((p) => [
      [p.hash, "mono"], [p.a + " \u2194 " + p.b, "mono wrap"], p.transport,
      duration(p.age_ms), bytes(p.bytes), p.limited ? "limited" : "full",
    ]), "no relay session now (" + s.relay.total + " since start)", 6);
  } else {
    fill("sessions", [], "this server runs no relay role", 6);
  }

  $("reject-count").textContent = s.rejections.total;
  fill("rejections", s.rejections.list.map((r) => [
    clock(r.last), r.role, [r.reason, "wrap"], [r.from, "mono"], [r.detail, "mono wrap"],
    String(r.count),
  ]), "nothing refused since start", 6);
  document.body.dataset.ready = "1";
}

async function poll() {
  try {
    const resp = await fetch("/api/status", { cache: "no-store", credentials: "same-origin" });
    if (resp.status === 401)
      throw new Error("this server wants its admin token: open /?token=TOKEN once (the token is in the --http-token-file file)");
    if (!resp.ok) throw new Error("status " + resp.status + " from /api/status");
    render(await resp.json());
    $("error").hidden = true;
  } catch (e) {
    $("error").textContent = "cannot read the status: " + e.message;
    $("error").hidden = false;
  }
  setTimeout(poll, POLL_MS);
}

function copyKey() {
  const text = $("pubkey").textContent;
  const done = () => {
    $("copy").textContent = "Copied";
    $("copy").classList.add("done");
    setTimeout(() => { $("copy").textContent = "Copy"; $("copy").classList.remove("done"); }, 1500);
  };
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(text).then(done, () => {});
    return;
  }
  // plain http from another machine: the old way
  const range = document.createRange();
  range.selectNodeContents($("pubkey"));
  const sel = window.getSelection();
  sel.removeAllRanges();
  sel.addRange(range);
  if (document.execCommand("copy")) done();
}

document.addEventListener("DOMContentLoaded", () => {
  $("copy").addEventListener("click", copyKey);
  poll();
});
