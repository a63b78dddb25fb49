/* tsunagu chat widget: embed with one tag, e.g.
 *   <script src="https://desk.example.jp/widget.js" defer></script>
 * Options (data attributes on the script tag):
 *   data-open="true"        open the chat at once
 *   data-exit-url="https://…" where すぐに閉じる goes (default: a search site)
 *   data-transport="http"   never try the WebSocket (networks that block it); otherwise the
 *                           widget falls back to HTTP by itself after failed connects
 * Plain JS, no build step, no third-party code. */
(function () {
  "use strict";

  var script = document.currentScript;
  if (!script || window.__tsunaguWidget) return;
  window.__tsunaguWidget = true;

  var base = new URL(script.src, window.location.href);
  var ORIGIN = base.origin;
  var WS_URL = (base.protocol === "https:" ? "wss://" : "ws://") + base.host + "/ws/chat";
  var EXIT_URL = script.getAttribute("data-exit-url") || "https://www.google.co.jp/";
  var START_OPEN = script.getAttribute("data-open") === "true";
  var KEY_SESSION = "tsunagu.session";
  var KEY_LOG = "tsunagu.log";
  var KEY_OUTBOX = "tsunagu.outbox";
  var KEY_SEEN = "tsunagu.seen";
  var MAX_CHARS = 2000;
  var API_URL = ORIGIN + "/api/chat";
  var WS_FAILS_BEFORE_HTTP = 3; // sockets that closed before "ready", in a row
  var WS_READY_TIMEOUT = 10000; // a socket that opens but never answers counts as failed

  // -- storage (sessionStorage: gone when the tab closes) ---------------------------------
  function load(key, fallback) {
    try {
      var raw = window.sessionStorage.getItem(key);
      return raw ? JSON.parse(raw) : fallback;
    } catch (e) {
      return fallback;
    }
  }
  function save(key, value) {
    try {
      window.sessionStorage.setItem(key, JSON.stringify(value));
    } catch (e) {
      /* storage full or blocked: the chat still works for this page */
    }
  }
  function clearStored() {
    try {
      [KEY_SESSION, KEY_LOG, KEY_OUTBOX, KEY_SEEN].forEach(function (k) {
        window.sessionStorage.removeItem(k);
      });
    } catch (e) {
      /* ignore */
    }
  }

  var session = load(KEY_SESSION, null);
  var log = load(KEY_LOG, []); // rendered entries, so a reload shows the conversation
  var outbox = load(KEY_OUTBOX, []); // frames not yet answered; resent after reconnecting
  // The last counselor-side push shown ({epoch, seq}): the server sends what came after it.
  var seen = load(KEY_SEEN, { epoch: null, seq: 0 });

  // -- DOM helpers ------------------------------------------------------------------------
  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }
  function newId() {
    var bytes = new Uint8Array(9);
    window.crypto.getRandomValues(bytes);
    return Array.prototype.map
      .call(bytes, function (b) {
        return ("0" + b.toString(16)).slice(-2);
      })
      .join("");
  }

  var css = document.createElement("link");
  css.rel = "stylesheet";
  css.href = ORIGIN + "/widget.css";
  document.head.appendChild(css);

  var root = el("div", "tsg-root");
  var launcher = el("button", "tsg-launcher", "相談する");
  launcher.type = "button";
  launcher.setAttribute("aria-controls", "tsg-panel");
  launcher.setAttribute("aria-expanded", "false");

  var panel = el("section", "tsg-panel");
  panel.id = "tsg-panel";
  panel.setAttribute("aria-label", "つなぐ 相談チャット");
  panel.hidden = true;

  var header = el("div", "tsg-header");
  var title = el("h2", "tsg-title", "つなぐ 相談チャット");
  var exitBtn = el("button", "tsg-exit", "すぐに閉じる");
  exitBtn.type = "button";
  exitBtn.setAttribute("aria-label", "すぐに閉じる（このページを別のサイトに切り替えます）");
  var clearBtn = el("button", "tsg-clear", "会話を消す");
  clearBtn.type = "button";
  var minBtn = el("button", "tsg-min", "×");
  minBtn.type = "button";
  minBtn.setAttribute("aria-label", "チャットをたたむ");
  var tools = el("div", "tsg-tools");
  tools.appendChild(clearBtn);
  tools.appendChild(minBtn);
  header.appendChild(title);
  header.appendChild(exitBtn);
  header.appendChild(tools);

  var logEl = el("div", "tsg-log");
  logEl.setAttribute("role", "log");
  logEl.setAttribute("aria-live", "polite");
  logEl.setAttribute("aria-label", "会話");
  logEl.tabIndex = 0;

  var typing = el("div", "tsg-typing");
  typing.setAttribute("role", "status");
  typing.hidden = true;
  typing.appendChild(el("span", "tsg-sr", "返事を書いています"));
  for (var i = 0; i < 3; i++) typing.appendChild(el("span", "tsg-dot"));

  var status = el("div", "tsg-status");
  status.setAttribute("role", "status");
  status.setAttribute("aria-live", "polite");

  var form = el("form", "tsg-form");
  var inputId = "tsg-input";
  var label = el("label", "tsg-sr", "メッセージ");
  label.htmlFor = inputId;
  var input = el("textarea", "tsg-input");
  input.id = inputId;
  input.rows = 2;
  input.maxLength = MAX_CHARS;
  input.placeholder = "気になっていることを書いてください（Enterで送信）";
  var sendBtn = el("button", "tsg-send", "送信");
  sendBtn.type = "submit";
  form.appendChild(label);
  form.appendChild(input);
  form.appendChild(sendBtn);

  panel.appendChild(header);
  panel.appendChild(logEl);
  panel.appendChild(typing);
  panel.appendChild(status);
  panel.appendChild(form);
  root.appendChild(launcher);
  root.appendChild(panel);

  // -- rendering ---------------------------------------------------------------------------
  function scrollDown() {
    logEl.scrollTop = logEl.scrollHeight;
  }

  function renderUser(text) {
    var row = el("div", "tsg-msg tsg-user");
    row.appendChild(el("span", "tsg-sr", "あなた："));
    row.appendChild(el("p", "tsg-bubble", text));
    logEl.appendChild(row);
  }

  function renderCard(item) {
    var card = el("article", "tsg-card");
    card.setAttribute("data-kind", item.kind || "");
    var head = el("h3", "tsg-card-name", item.name);
    if (item.sample) {
      var badge = el("span", "tsg-badge", "サンプル");
      badge.title = "例として載せている架空の窓口です";
      head.appendChild(badge);
    }
    card.appendChild(head);
    if (item.description) card.appendChild(el("p", "tsg-card-desc", item.description));
    if (item.reason) card.appendChild(el("p", "tsg-card-reason", item.reason));
    if (item.hours) {
      var hours = "受付：" + item.hours;
      if (item.open_now === true) hours += "（いま受付中）";
      card.appendChild(el("p", "tsg-card-hours", hours));
    }
    var links = el("div", "tsg-card-links");
    if (item.phone && item.tel) {
      var tel = el("a", "tsg-tel", "電話 " + item.phone);
      tel.href = "tel:" + item.tel;
      links.appendChild(tel);
    }
    if (item.url && /^https?:\/\//.test(item.url)) {
      var web = el("a", "tsg-web", "ウェブサイト");
      web.href = item.url;
      web.target = "_blank";
      web.rel = "noopener noreferrer";
      links.appendChild(web);
    }
    if (links.childNodes.length) card.appendChild(links);
    if (item.notes) card.appendChild(el("p", "tsg-card-notes", item.notes));
    return card;
  }

  function renderBot(m, live) {
    var row = el("div", "tsg-msg tsg-bot tsg-" + m.type);
    row.appendChild(el("span", "tsg-sr", "つなぐ："));
    if (m.type === "text" || m.type === "end") {
      row.appendChild(el("p", "tsg-bubble", m.text));
    } else if (m.type === "handoff") {
      var note = el("p", "tsg-bubble tsg-notice", m.text);
      note.setAttribute("data-status", m.status || "");
      row.appendChild(note);
    } else if (m.type === "choices") {
      row.appendChild(el("p", "tsg-bubble", m.text));
      var group = el("div", "tsg-choices");
      group.setAttribute("role", "group");
      group.setAttribute("aria-label", "選択肢");
      (m.items || []).forEach(function (item) {
        var b = el("button", "tsg-choice", item.label);
        b.type = "button";
        b.disabled = !live;
        b.addEventListener("click", function () {
          Array.prototype.forEach.call(group.querySelectorAll("button"), function (x) {
            x.disabled = true;
          });
          send({ type: "postback", postback: item.postback }, item.label);
        });
        group.appendChild(b);
      });
      row.appendChild(group);
    } else if (m.type === "resources") {
      if (m.intro) row.appendChild(el("p", "tsg-bubble", m.intro));
      var list = el("div", "tsg-cards");
      (m.items || []).forEach(function (item) {
        list.appendChild(renderCard(item));
      });
      row.appendChild(list);
    } else {
      return;
    }
    logEl.appendChild(row);
  }

  function remember(entry) {
    log.push(entry);
    if (log.length > 200) log = log.slice(-200);
    save(KEY_LOG, log);
  }

  function showMessages(messages) {
    var ended = false;
    messages.forEach(function (m) {
      if (m.type === "end") ended = true;
    });
    if (ended) {
      // The conversation was deleted: nothing of it stays in this tab either.
      logEl.textContent = "";
      log = [];
      outbox = [];
      seen = { epoch: null, seq: 0 };
      session = null;
      clearStored();
      // Start a fresh anonymous session: the old one belongs to the deleted conversation.
      if (ws) {
        retry = 0;
        ws.close();
      }
      if (mode === "http") {
        http.ready = false;
        http.started = false;
        window.setTimeout(startHttp, 0);
      }
    }
    messages.forEach(function (m) {
      renderBot(m, true);
      if (!ended) remember({ who: "bot", m: m });
    });
    scrollDown();
  }

  // A counselor-side push (numbered): shown once, however often it arrives.
  function showPush(epoch, seq, messages) {
    if (epoch === seen.epoch && seq <= seen.seq) return;
    seen = { epoch: epoch, seq: seq };
    save(KEY_SEEN, seen);
    showMessages(messages || []);
  }

  // -- connection --------------------------------------------------------------------------
  var ws = null;
  var ready = false;
  var retry = 0;
  var retryTimer = null;
  var wsFailures = 0;
  var mode = script.getAttribute("data-transport") === "http" ? "http" : "ws";
  root.setAttribute("data-transport", mode);

  function setStatus(text) {
    status.textContent = text || "";
  }

  function wsFailed() {
    wsFailures += 1;
    if (wsFailures >= WS_FAILS_BEFORE_HTTP) {
      // Sockets seem blocked on this network (some offices and proxies do): talk over HTTP.
      mode = "http";
      root.setAttribute("data-transport", mode);
      startHttp();
    } else {
      scheduleReconnect();
    }
  }

  function connect() {
    if (mode === "http") {
      startHttp();
      return;
    }
    if (ws) return;
    ready = false;
    var readyTimer = null;
    try {
      ws = new WebSocket(WS_URL);
    } catch (e) {
      ws = null;
      wsFailed();
      return;
    }
    var socket = ws;
    ws.addEventListener("open", function () {
      socket.send(
        JSON.stringify({ type: "hello", session: session, epoch: seen.epoch, seq: seen.seq })
      );
      readyTimer = window.setTimeout(function () {
        if (!ready) socket.close();
      }, WS_READY_TIMEOUT);
    });
    ws.addEventListener("message", function (ev) {
      var data;
      try {
        data = JSON.parse(ev.data);
      } catch (e) {
        return;
      }
      if (data.type === "ready") {
        ready = true;
        retry = 0;
        wsFailures = 0;
        setStatus("");
        session = data.session;
        save(KEY_SESSION, session);
        outbox.forEach(function (frame) {
          ws.send(JSON.stringify(frame));
        });
        if (outbox.length) typing.hidden = false;
      } else if (data.type === "typing") {
        typing.hidden = false;
        scrollDown();
      } else if (data.type === "reply" && typeof data.seq === "number") {
        showPush(data.epoch, data.seq, data.messages);
      } else if (data.type === "reply") {
        if (data.id) {
          outbox = outbox.filter(function (f) {
            return f.id !== data.id;
          });
          save(KEY_OUTBOX, outbox);
        }
        if (!outbox.length) typing.hidden = true;
        showMessages(data.messages || []);
      } else if (data.type === "error") {
        if (data.id) {
          outbox = outbox.filter(function (f) {
            return f.id !== data.id;
          });
          save(KEY_OUTBOX, outbox);
        }
        typing.hidden = true;
        setStatus("送れませんでした：" + (data.message || data.code));
      }
    });
    ws.addEventListener("close", function () {
      var wasReady = ready;
      if (readyTimer) window.clearTimeout(readyTimer);
      if (ws === socket) ws = null;
      ready = false;
      if (mode === "http") return;
      if (wasReady) scheduleReconnect();
      else wsFailed();
    });
    ws.addEventListener("error", function () {
      /* close follows */
    });
  }

  // -- HTTP fallback: POST /api/chat for turns, a long poll for counselor messages -----------
  var http = { started: false, ready: false, busy: false, polling: false, pollTimer: null };

  function post(body) {
    // text/plain keeps it a "simple" request: no CORS preflight when embedded elsewhere.
    return window
      .fetch(API_URL, {
        method: "POST",
        headers: { "Content-Type": "text/plain" },
        body: JSON.stringify(body),
        credentials: "omit",
        cache: "no-store",
      })
      .then(function (r) {
        return r.json().then(function (data) {
          return { ok: r.ok, status: r.status, data: data || {} };
        });
      });
  }

  function startHttp() {
    if (http.started) return;
    http.started = true;
    post({ session: session }).then(
      function (res) {
        if (!res.ok) throw new Error("start");
        session = res.data.session;
        save(KEY_SESSION, session);
        setStatus("");
        http.ready = true;
        showMessages(res.data.messages || []);
        flushHttp();
        schedulePoll(0);
      },
      function () {
        http.started = false;
        if (outbox.length || !panel.hidden) setStatus("接続が切れました。つなぎ直しています…");
        window.setTimeout(startHttp, 3000);
      }
    );
  }

  function httpBody(frame) {
    var body = { session: session, id: frame.id };
    if (frame.type === "message") body.text = frame.text;
    else if (frame.type === "postback") body.postback = frame.postback;
    else body.action = "delete";
    return body;
  }

  function flushHttp() {
    if (http.busy || !http.ready || !outbox.length) return;
    http.busy = true;
    var frame = outbox[0];
    typing.hidden = false;
    post(httpBody(frame)).then(
      function (res) {
        http.busy = false;
        outbox = outbox.filter(function (f) {
          return f.id !== frame.id;
        });
        save(KEY_OUTBOX, outbox);
        if (!outbox.length) typing.hidden = true;
        if (res.ok) {
          setStatus("");
          showMessages(res.data.messages || []);
        } else {
          var err = res.data.error || {};
          setStatus("送れませんでした：" + (err.message || err.code || res.status));
        }
        flushHttp();
      },
      function () {
        // Kept in the outbox and sent again with the same id (the server answers it once).
        http.busy = false;
        setStatus("接続が切れました。つなぎ直しています…");
        window.setTimeout(flushHttp, 3000);
      }
    );
  }

  function poll() {
    if (http.polling || !http.ready || !session) return;
    http.polling = true;
    var asked = session;
    var body = { session: asked, action: "updates", epoch: seen.epoch, seq: seen.seq, wait: 20 };
    post(body).then(
      function (res) {
        http.polling = false;
        if (res.ok && asked === session) {
          (res.data.updates || []).forEach(function (u) {
            showPush(res.data.epoch, u.seq, u.messages);
          });
        }
        schedulePoll(res.ok ? 300 : 5000);
      },
      function () {
        http.polling = false;
        schedulePoll(5000);
      }
    );
  }

  function schedulePoll(delay) {
    if (http.pollTimer) return;
    http.pollTimer = window.setTimeout(function () {
      http.pollTimer = null;
      poll();
    }, delay);
  }

  function scheduleReconnect() {
    if (retryTimer) return;
    retry = Math.min(retry + 1, 5);
    var delay = Math.min(15000, 500 * Math.pow(2, retry));
    if (outbox.length || !panel.hidden) setStatus("接続が切れました。つなぎ直しています…");
    retryTimer = window.setTimeout(function () {
      retryTimer = null;
      connect();
    }, delay);
  }

  function send(frame, shown) {
    frame.id = newId();
    if (shown) {
      renderUser(shown);
      remember({ who: "user", text: shown });
    }
    outbox.push(frame);
    save(KEY_OUTBOX, outbox);
    typing.hidden = false;
    scrollDown();
    if (mode === "http") {
      if (http.ready) flushHttp();
      else startHttp();
    } else if (ws && ready) {
      ws.send(JSON.stringify(frame));
    } else {
      connect();
    }
  }

  // -- actions -----------------------------------------------------------------------------
  function submit() {
    var text = input.value.trim();
    if (!text) return;
    if (text.length > MAX_CHARS) text = text.slice(0, MAX_CHARS);
    input.value = "";
    send({ type: "message", text: text }, text);
  }

  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    submit();
  });

  input.addEventListener("keydown", function (ev) {
    // Japanese IME: Enter confirms the conversion while composing; it must not send.
    if (ev.isComposing || ev.keyCode === 229) return;
    if (ev.key === "Enter" && !ev.shiftKey) {
      ev.preventDefault();
      submit();
    }
  });

  clearBtn.addEventListener("click", function () {
    if (session) {
      send({ type: "delete" }, null);
    } else {
      logEl.textContent = "";
      log = [];
      clearStored();
    }
  });

  exitBtn.addEventListener("click", function () {
    var old = session;
    clearStored();
    if (old && navigator.sendBeacon) {
      try {
        navigator.sendBeacon(
          ORIGIN + "/api/chat",
          JSON.stringify({ session: old, action: "delete" })
        );
      } catch (e) {
        /* leaving matters more */
      }
    }
    window.location.replace(EXIT_URL);
  });

  function setOpen(open) {
    panel.hidden = !open;
    launcher.hidden = open;
    launcher.setAttribute("aria-expanded", open ? "true" : "false");
    if (open) {
      connect();
      input.focus();
      scrollDown();
    } else {
      launcher.focus();
    }
  }
  launcher.addEventListener("click", function () {
    setOpen(true);
  });
  minBtn.addEventListener("click", function () {
    setOpen(false);
  });
  panel.addEventListener("keydown", function (ev) {
    if (ev.key === "Escape") setOpen(false);
  });

  function mount() {
    document.body.appendChild(root);
    log.forEach(function (entry) {
      if (entry.who === "user") renderUser(entry.text);
      else renderBot(entry.m, false);
    });
    // Buttons of the last bot message stay usable after a reload.
    var groups = logEl.querySelectorAll(".tsg-choices");
    if (groups.length && log.length && log[log.length - 1].who === "bot") {
      var lastEntry = log[log.length - 1].m;
      if (lastEntry.type === "choices") {
        logEl.removeChild(logEl.lastChild);
        renderBot(lastEntry, true);
      }
    }
    setOpen(START_OPEN);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", mount);
  } else {
    mount();
  }
})();
