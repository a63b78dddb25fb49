/* つなぐ 相談員コンソール: live queue, case view, replies. Plain JS; all text via textContent. */
(function () {
  "use strict";

  var csrf = document.querySelector('meta[name="csrf-token"]').getAttribute("content");
  var $ = function (id) { return document.getElementById(id); };
  var queueBody = $("queue-body");
  var conn = $("conn");
  var banner = $("crisis-banner");
  var caseBox = $("case");
  var statusEl = $("case-status");
  var cases = [];
  var serverOffset = 0;
  var current = null; // the open case's data
  var seenMessages = {};
  var knownCases = null; // ids seen in the queue (null until the first snapshot)
  var soundOn = false;
  var chime = null;
  var baseTitle = document.title;

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
  }

  function fmtWait(seconds) {
    seconds = Math.max(0, Math.floor(seconds));
    var m = Math.floor(seconds / 60);
    if (m < 1) return seconds + "秒";
    if (m < 60) return m + "分";
    return Math.floor(m / 60) + "時間" + (m % 60) + "分";
  }

  function fmtTime(ts) {
    var d = new Date(ts * 1000);
    var p = function (n) { return (n < 10 ? "0" : "") + n; };
    return p(d.getHours()) + ":" + p(d.getMinutes());
  }

  function now() { return Date.now() / 1000 + serverOffset; }

  // -- API ------------------------------------------------------------------------------------
  function api(method, path, body) {
    var opts = {
      method: method,
      headers: { "Accept": "application/json", "X-CSRF-Token": csrf },
      credentials: "same-origin"
    };
    if (body !== undefined) {
      opts.headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(body);
    }
    return fetch("/console" + path, opts).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (data) {
        if (r.status === 401) { window.location.href = "/console/login"; }
        if (!r.ok) {
          var err = new Error(data.message || ("エラー（" + r.status + "）"));
          err.status = r.status;
          throw err;
        }
        return data;
      });
    });
  }

  function say(text) { statusEl.textContent = text; }

  // -- queue ----------------------------------------------------------------------------------
  function crisisBadge(c) {
    var cls = c.crisis === "urgent" ? "badge urgent" : c.crisis === "concern" ? "badge concern" : "badge none";
    var b = el("span", cls, c.crisis === "none" ? "通常" : c.crisis_label);
    return b;
  }

  function renderQueue() {
    clear(queueBody);
    var waiting = 0;
    if (!cases.length) {
      var tr = el("tr");
      var td = el("td", "muted", "いまお待ちの相談はありません。");
      td.colSpan = 5;
      tr.appendChild(td);
      queueBody.appendChild(tr);
    }
    cases.forEach(function (c) {
      if (c.state === "waiting") waiting += 1;
      var tr = el("tr", "case-row state-" + c.state + (c.crisis !== "none" ? " is-crisis" : ""));
      tr.setAttribute("data-case", c.id);
      var td = el("td");
      td.appendChild(crisisBadge(c));
      tr.appendChild(td);
      td = el("td");
      td.appendChild(el("strong", null, c.topic_label));
      td.appendChild(el("span", "meta", c.audience_label + "・" + c.age_label + "・" + c.area_label));
      td.appendChild(el("span", "meta", c.consent_label + "・" + c.reason_label + "・" + c.office_label));
      tr.appendChild(td);
      td = el("td", "wait");
      td.setAttribute("data-created", c.created_at);
      td.setAttribute("data-state", c.state);
      td.textContent = fmtWait((c.state === "waiting" ? now() : c.created_at + c.wait_seconds) - c.created_at);
      tr.appendChild(td);
      tr.appendChild(el("td", null, c.state_label + (c.counselor ? "（" + c.counselor + "）" : "")));
      td = el("td");
      var open = el("button", "small", "開く");
      open.type = "button";
      open.setAttribute("aria-label", "相談 " + c.id + "（" + c.topic_label + "）を開く");
      open.addEventListener("click", function () { openCase(c.id); });
      td.appendChild(open);
      tr.appendChild(td);
      if (current && current.case.id === c.id) tr.setAttribute("aria-current", "true");
      queueBody.appendChild(tr);
    });
    $("queue-count").textContent = "（待機 " + waiting + " 件）";
    document.title = (waiting ? "(" + waiting + ") " : "") + baseTitle;
  }

  function tickWaits() {
    Array.prototype.forEach.call(queueBody.querySelectorAll("td.wait"), function (td) {
      if (td.getAttribute("data-state") !== "waiting") return;
      td.textContent = fmtWait(now() - parseFloat(td.getAttribute("data-created")));
    });
  }

  function onQueue(data) {
    serverOffset = data.now - Date.now() / 1000;
    var ids = {};
    data.cases.forEach(function (c) { ids[c.id] = true; });
    if (knownCases !== null) {
      data.cases.forEach(function (c) {
        if (!knownCases[c.id] && c.state === "waiting" && c.crisis === "none") notifyNew(false);
      });
    }
    knownCases = ids;
    cases = data.cases;
    renderQueue();
  }

  function notifyNew(crisis) {
    if (soundOn && chime) {
      try { chime.currentTime = 0; chime.play(); } catch (e) { /* autoplay refused */ }
    }
    if (crisis) {
      banner.hidden = false;
      banner.textContent = "緊急度の高い相談が届きました。一覧の先頭を確認してください。";
      document.body.classList.add("alerting");
      window.setTimeout(function () { document.body.classList.remove("alerting"); }, 6000);
    }
  }

  // -- case -----------------------------------------------------------------------------------
  var SENDER = { person: "ご本人", bot: "ボット", counselor: "相談員", system: "システム" };

  function addChat(list, sender, text, at, extra) {
    var li = el("li", "msg from-" + sender);
    var who = el("span", "who", (SENDER[sender] || sender) + (extra ? "（" + extra + "）" : ""));
    li.appendChild(who);
    li.appendChild(el("span", "time", at ? fmtTime(at) : ""));
    var p = el("p", "text", text);
    li.appendChild(p);
    list.appendChild(li);
    list.scrollTop = list.scrollHeight;
    return p;
  }

  function addLive(m, sentByMe) {
    var text = m.kind === "resource" ? "［窓口カード］" + m.text : m.text;
    var shown = seenMessages[m.id];
    if (shown) {
      // The same message twice (socket event, then the answer to this page's send): the
      // answer carries the words exactly as this counselor typed them.
      if (sentByMe) shown.textContent = text;
      return;
    }
    seenMessages[m.id] = addChat($("live"), m.sender, text, m.at, m.author);
  }

  var seenNotes = {};
  function addNote(n) {
    if (seenNotes[n.id]) return;
    seenNotes[n.id] = true;
    var li = el("li", "note");
    li.appendChild(el("span", "who", n.author + "・" + fmtTime(n.at)));
    li.appendChild(el("p", "text", n.text));
    $("notes").appendChild(li);
  }

  function dd(dl, label, value, cls) {
    dl.appendChild(el("dt", null, label));
    dl.appendChild(el("dd", cls || null, value));
  }

  function renderCase(data) {
    current = data;
    seenMessages = {};
    seenNotes = {};
    var c = data.case;
    caseBox.hidden = false;
    $("case-id").textContent = c.id + "（" + c.state_label + "）";
    var dl = $("case-summary");
    clear(dl);
    dd(dl, "緊急度", c.crisis === "none" ? "通常" : c.crisis_label, c.crisis !== "none" ? "crisis-text" : null);
    dd(dl, "相談の種類", c.topics_label.length ? c.topics_label.join("、") : c.topic_label);
    dd(dl, "どなたの相談", c.audience_label);
    dd(dl, "年代", c.age_label);
    dd(dl, "地域", c.area_label);
    dd(dl, "共有への同意", c.consent_label);
    dd(dl, "つないだ理由", c.reason_label);
    dd(dl, "事務所", c.office_label);
    dd(dl, "経路", c.channel === "line" ? "LINE" : "ウェブ");
    if (!c.connected) dd(dl, "ご本人", "会話を削除しました（送信できません）");
    var mine = c.mine && (c.state === "claimed" || c.state === "active");
    $("btn-claim").hidden = c.state !== "waiting";
    $("reply-form").hidden = !mine || !c.connected;
    $("resource-form").hidden = !mine || !c.connected;
    $("manage").hidden = !(c.state === "waiting" || c.state === "claimed" || c.state === "active");
    $("transcript-note").textContent = data.transcript_shared
      ? "ご本人の同意により、これまでの会話（個人情報は伏せています）を表示しています。"
      : "ご本人は匿名を選びました。これまでの会話は表示されません（分類のみ）。";
    clear($("transcript"));
    data.transcript.forEach(function (l) { addChat($("transcript"), l.sender, l.text, l.at); });
    clear($("live"));
    data.live.forEach(function (m) { addLive(m, false); });
    clear($("notes"));
    data.notes.forEach(addNote);
    var rec = $("recommended");
    clear(rec);
    if (!data.recommended.length) rec.appendChild(el("li", "muted", "（案内した窓口はありません）"));
    data.recommended.forEach(function (r) { rec.appendChild(el("li", null, r.name)); });
    renderQueue();
  }

  function openCase(id, keepFocus) {
    return api("GET", "/api/cases/" + id).then(function (data) {
      renderCase(data);
      say("");
      watch(id);
      if (!keepFocus) $("case-h").focus();
    }).catch(function (err) {
      caseBox.hidden = false;
      current = null;
      say(err.status === 403 ? "この相談は開けません（ほかの事務所の相談です）。" : err.message);
    });
  }

  function reload() { if (current) openCase(current.case.id, true); }

  function act(path, body, done) {
    if (!current) return;
    var id = current.case.id;
    return api("POST", "/api/cases/" + id + path, body || {}).then(function (data) {
      if (done) done(data);
      return data;
    }).catch(function (err) { say(err.message); });
  }

  $("btn-claim").addEventListener("click", function () {
    act("/claim", {}, function () { say("担当になりました。"); reload(); });
  });

  $("canned").addEventListener("change", function () {
    var opt = this.options[this.selectedIndex];
    if (opt && opt.value) {
      $("reply-text").value = opt.getAttribute("data-text");
      $("reply-text").focus();
    }
    this.selectedIndex = 0;
  });

  $("reply-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var box = $("reply-text");
    var text = box.value;
    if (!text.trim()) return;
    act("/reply", { text: text }, function (data) {
      box.value = "";
      addLive(data.message, true);
      say("送信しました。");
      if (current.case.state === "claimed") reload();
    });
  });

  $("resource-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var pick = $("resource-pick");
    if (!pick.value) return;
    act("/resource", { resource_id: pick.value }, function (data) {
      addLive(data.message);
      pick.selectedIndex = 0;
      say("窓口のカードを送りました。");
    });
  });

  $("note-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var box = $("note-text");
    if (!box.value.trim()) return;
    act("/note", { text: box.value }, function (data) {
      box.value = "";
      addNote(data.note);
      say("メモを残しました。");
    });
  });

  $("transfer-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var office = $("transfer-office").value;
    if (!office) return;
    act("/transfer", { office: office }, function () { say("ほかの事務所に移しました。"); reload(); });
  });

  $("return-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    act("/return", {}, function () { say("ボットに戻しました。"); reload(); });
  });

  $("close-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var kinds = [];
    Array.prototype.forEach.call(document.querySelectorAll('#close-form input[name="kinds"]:checked'), function (c) {
      kinds.push(c.value);
    });
    act("/close", { kinds: kinds, referred_to: $("referred-to").value }, function () {
      say("終了しました。記録を保存しました。");
      reload();
    });
  });

  $("sound-toggle").addEventListener("click", function () {
    soundOn = !soundOn;
    this.setAttribute("aria-pressed", soundOn ? "true" : "false");
    this.textContent = "通知音：" + (soundOn ? "オン" : "オフ");
    if (soundOn && !chime) chime = new Audio("/console/static/chime.wav");
  });

  // -- socket ---------------------------------------------------------------------------------
  var ws = null;
  var retry = 0;
  var watching = null;

  function watch(id) {
    watching = id;
    if (ws && ws.readyState === 1) ws.send(JSON.stringify({ type: "watch", case: id }));
  }

  function connect() {
    var proto = window.location.protocol === "https:" ? "wss:" : "ws:";
    ws = new WebSocket(proto + "//" + window.location.host + "/console/ws");
    ws.addEventListener("open", function () {
      retry = 0;
      conn.textContent = "";
      conn.className = "conn ok";
      if (watching !== null) watch(watching);
    });
    ws.addEventListener("message", function (ev) {
      var data;
      try { data = JSON.parse(ev.data); } catch (e) { return; }
      if (data.type === "queue") {
        onQueue(data);
      } else if (data.type === "crisis") {
        notifyNew(true);
      } else if (data.type === "case" && current && data.case === current.case.id) {
        var e = data.event || {};
        if (e.type === "message" && e.message) addLive(e.message);
        else if (e.type === "note" && e.note) addNote(e.note);
        else if (e.type === "state") reload();
      }
    });
    ws.addEventListener("close", function () {
      ws = null;
      conn.className = "conn down";
      conn.textContent = "接続が切れました。再接続しています…";
      retry = Math.min(retry + 1, 6);
      window.setTimeout(connect, 500 * Math.pow(2, retry - 1));
    });
  }

  window.setInterval(tickWaits, 1000);
  connect();
})();
