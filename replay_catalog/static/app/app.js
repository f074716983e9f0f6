// The demo app: room list, anchor profile and player, over the public GraphQL API only.
// Every piece of catalog text goes into the page through textContent or attributes,
// never through innerHTML.
"use strict";

const PAGE_SIZE = 6;
const HLS_SCRIPT = "/static/vendor/hls.min.js";

const ROOMS_QUERY = `query Rooms($first: Int!, $after: String) {
  rooms(first: $first, after: $after) {
    edges { cursor node {
      kind title coverUrl
      anchor { userId nickname avatarUrl }
      broadcast { id durationSeconds startedAt }
    } }
    pageInfo { hasNextPage endCursor }
  }
}`;

const ANCHOR_QUERY = `query Anchor($userId: String!, $first: Int!, $after: String) {
  anchor(userId: $userId) {
    userId nickname avatarUrl isLive replayCount replayDurationSeconds
    replays(first: $first, after: $after) {
      edges { node { id title coverUrl durationSeconds startedAt } }
      pageInfo { hasNextPage endCursor }
    }
  }
}`;

const BROADCAST_QUERY = `query Broadcast($id: ID!) {
  broadcast(id: $id) {
    id isLive title coverUrl durationSeconds startedAt playbackUrl
    anchor { userId nickname avatarUrl }
    stream { livePlayUrls { hls } }
    timeline { recording { format videoUrl } }
  }
}`;

async function graphql(query, variables) {
  const response = await fetch("/graphql", {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: "application/json" },
    body: JSON.stringify({ query, variables }),
  });
  const body = await response.json();
  if (body.errors && body.errors.length) {
    throw new Error(body.errors.map((error) => error.message).join("; "));
  }
  return body.data;
}

// A DOM element; `children` are nodes or strings (strings become text nodes).
function el(tag, attributes, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

// Only http(s) URLs reach an src attribute (the API promises this; the page checks anyway).
function safeUrl(url) {
  if (!url) return null;
  try {
    const parsed = new URL(url, window.location.href);
    return parsed.protocol === "http:" || parsed.protocol === "https:" ? parsed.href : null;
  } catch {
    return null;
  }
}

// An image that turns into `fallback` when it is missing or fails to load.
function picture(url, alt, fallback) {
  const src = safeUrl(url);
  if (!src) return fallback();
  const image = el("img", { src, alt, loading: "lazy" });
  image.addEventListener("error", () => image.replaceWith(fallback()), { once: true });
  return image;
}

function displayName(anchor) {
  return anchor.nickname || anchor.userId;
}

function avatar(anchor, large) {
  const name = displayName(anchor);
  const initial = () => el("span", { class: "initial" }, Array.from(name)[0] || "?");
  return el(
    "span",
    { class: large ? "avatar large" : "avatar" },
    picture(anchor.avatarUrl, "", initial),
  );
}

function duration(seconds) {
  if (seconds === null || seconds === undefined) return "";
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = seconds % 60;
  const mm = String(m).padStart(h ? 2 : 1, "0");
  return (h ? `${h}:` : "") + `${mm}:${String(s).padStart(2, "0")}`;
}

function when(iso) {
  return iso ? new Date(iso).toLocaleString() : "";
}

function card({ broadcastId, live, title, coverUrl, durationSeconds, startedAt, anchor }) {
  const heading = title || (live ? `${displayName(anchor)} is live` : `Replay · ${when(startedAt)}`);
  const placeholder = () => el("div", { class: "placeholder", "aria-hidden": "true" }, "▶");
  return el(
    "li",
    { class: live ? "room live" : "room replay", "data-kind": live ? "LIVE" : "REPLAY" },
    el(
      "a",
      { href: `#/broadcast/${encodeURIComponent(broadcastId)}` },
      el(
        "div",
        { class: "cover" },
        picture(coverUrl, "", placeholder),
        live ? el("span", { class: "badge" }, "LIVE") : null,
        live ? null : el("span", { class: "duration" }, duration(durationSeconds)),
      ),
      el("div", { class: "meta" }, el("p", { class: "title" }, heading)),
    ),
    el(
      "div",
      { class: "meta who" },
      avatar(anchor),
      el(
        "a",
        { class: "nickname", href: `#/anchor/${encodeURIComponent(anchor.userId)}` },
        displayName(anchor),
      ),
    ),
  );
}

// A list that grows page by page, following the connection's endCursor.
function pagedList(view, loadPage) {
  const list = el("ul", { class: "rooms" });
  const more = el("button", { class: "more", type: "button" }, "Load more");
  let after = null;
  async function next() {
    more.disabled = true;
    try {
      const page = await loadPage(after);
      list.append(...page.cards);
      after = page.pageInfo.endCursor;
      more.hidden = !page.pageInfo.hasNextPage;
    } catch (failure) {
      view.append(el("p", { class: "error" }, `Could not load: ${failure.message}`));
    } finally {
      more.disabled = false;
    }
  }
  more.addEventListener("click", next);
  view.append(list, more);
  return next();
}

async function showRooms(view) {
  view.replaceChildren(el("h1", {}, "Live and replays"));
  await pagedList(view, async (after) => {
    const { rooms } = await graphql(ROOMS_QUERY, { first: PAGE_SIZE, after });
    const cards = rooms.edges.map(({ node }) =>
      card({
        broadcastId: node.broadcast.id,
        live: node.kind === "LIVE",
        title: node.title,
        coverUrl: node.coverUrl,
        durationSeconds: node.broadcast.durationSeconds,
        startedAt: node.broadcast.startedAt,
        anchor: node.anchor,
      }),
    );
    return { cards, pageInfo: rooms.pageInfo };
  });
  if (!view.querySelector(".room, .error")) view.append(await emptyCatalog());
}

// An empty room list says how to fill it, and what this service has switched off
// (GET /switched-off: one sentence per setting left unset, never a value).
async function emptyCatalog() {
  const note = el(
    "section",
    { class: "empty" },
    el(
      "p",
      {},
      "No rooms yet: load the demo catalog with ",
      el("code", {}, "replay-catalog demo"),
      ", or send a callback of your own with ",
      el("code", {}, "replay-catalog send-callback push"),
      ".",
    ),
  );
  try {
    const response = await fetch("/switched-off", { headers: { Accept: "application/json" } });
    const { switchedOff } = await response.json();
    if (switchedOff && switchedOff.length) {
      note.append(
        el("p", {}, "Switched off on this service:"),
        el("ul", { class: "switched-off" }, ...switchedOff.map((line) => el("li", {}, line))),
      );
    }
  } catch {
    // The hint above stands on its own.
  }
  return note;
}

async function showAnchor(view, userId) {
  const first = await graphql(ANCHOR_QUERY, { userId, first: PAGE_SIZE, after: null });
  const anchor = first.anchor;
  if (!anchor) {
    view.replaceChildren(el("p", { class: "error" }, "No such anchor."));
    return;
  }
  view.replaceChildren(
    el(
      "section",
      { class: "profile" },
      avatar(anchor, true),
      el(
        "div",
        {},
        el("h1", {}, displayName(anchor)),
        el(
          "p",
          { class: "status replay-count" },
          `${anchor.replayCount} past broadcast${anchor.replayCount === 1 ? "" : "s"}` +
            ` · ${duration(anchor.replayDurationSeconds)}`,
          anchor.isLive ? " · live now" : "",
        ),
      ),
    ),
  );
  let pending = first;
  await pagedList(view, async (after) => {
    const { anchor: page } = pending || (await graphql(ANCHOR_QUERY, { userId, first: PAGE_SIZE, after }));
    pending = null;
    const cards = page.replays.edges.map(({ node }) =>
      card({
        broadcastId: node.id,
        live: false,
        title: node.title,
        coverUrl: node.coverUrl,
        durationSeconds: node.durationSeconds,
        startedAt: node.startedAt,
        anchor,
      }),
    );
    return { cards, pageInfo: page.replays.pageInfo };
  });
}

let hlsLoading = null;
function loadHls() {
  hlsLoading =
    hlsLoading ||
    new Promise((resolve, reject) => {
      const script = el("script", { src: HLS_SCRIPT });
      script.addEventListener("load", () => resolve(window.Hls));
      script.addEventListener("error", () => reject(new Error("hls.js did not load")));
      document.head.append(script);
    });
  return hlsLoading;
}

let activeHls = null;

// Plays `url` in `video`: HLS with hls.js where Media Source Extensions exist (Chromium's
// own HLS answers "maybe" and handles less), natively elsewhere (iOS Safari); MP4 natively.
async function play(video, url, note) {
  if (activeHls) {
    activeHls.destroy();
    activeHls = null;
  }
  video.dataset.source = url;
  const isHls = new URL(url).pathname.endsWith(".m3u8");
  if (isHls && (window.MediaSource || window.ManagedMediaSource)) {
    const Hls = await loadHls().catch(() => null);
    if (Hls && Hls.isSupported()) {
      activeHls = new Hls();
      activeHls.on(Hls.Events.ERROR, (_event, detail) => {
        if (detail.fatal) note.textContent = "The stream could not be loaded here.";
      });
      activeHls.loadSource(url);
      activeHls.attachMedia(video);
      video.dataset.engine = "hls.js";
      return;
    }
  }
  if (new URL(url).pathname.endsWith(".flv")) {
    note.textContent = "FLV does not play in browsers; open the link in a player app.";
  }
  video.dataset.engine = "native";
  video.src = url;
}

async function showBroadcast(view, id) {
  const { broadcast } = await graphql(BROADCAST_QUERY, { id });
  if (!broadcast) {
    view.replaceChildren(el("p", { class: "error" }, "No such broadcast."));
    return;
  }
  const live = broadcast.isLive;
  const livePlay = broadcast.stream.livePlayUrls;
  const url = safeUrl(live ? livePlay && livePlay.hls : broadcast.playbackUrl);
  const anchor = broadcast.anchor;
  const video = el("video", { controls: true, playsinline: true, preload: "metadata" });
  const note = el("p", { class: "status note" });
  view.replaceChildren(
    el(
      "section",
      { class: "player" },
      el("h1", {}, broadcast.title || (live ? `${displayName(anchor)} is live` : "Replay")),
      el(
        "div",
        { class: "who" },
        avatar(anchor),
        el("a", { href: `#/anchor/${encodeURIComponent(anchor.userId)}` }, displayName(anchor)),
        live ? el("span", { class: "badge-inline" }, "· LIVE") : ` · ${duration(broadcast.durationSeconds)}`,
      ),
      url ? video : el("p", { class: "status" }, "Nothing to play (no play URL)."),
      note,
      url ? el("p", { class: "source" }, el("a", { href: url }, url)) : null,
    ),
  );
  if (!url) return;
  // Multi-part MP4/FLV replays: the timeline gives the order to play the parts in.
  const parts = broadcast.timeline.map((part) => safeUrl(part.recording.videoUrl)).filter(Boolean);
  const next = parts.indexOf(url) >= 0 ? parts.slice(parts.indexOf(url) + 1) : [];
  video.addEventListener("ended", () => {
    if (next.length) play(video, next.shift(), note).then(() => video.play());
  });
  video.addEventListener("error", () => {
    note.textContent = "The video could not be loaded here.";
  });
  await play(video, url, note);
}

async function route() {
  const view = document.getElementById("view");
  const [, page, argument] = window.location.hash.split("/");
  delete view.dataset.ready;
  try {
    if (page === "anchor" && argument) await showAnchor(view, decodeURIComponent(argument));
    else if (page === "broadcast" && argument) await showBroadcast(view, decodeURIComponent(argument));
    else await showRooms(view);
  } catch (failure) {
    view.replaceChildren(el("p", { class: "error" }, `Could not load: ${failure.message}`));
  }
  view.dataset.ready = page || "rooms";
  window.scrollTo(0, 0);
}

window.addEventListener("hashchange", route);
route();
