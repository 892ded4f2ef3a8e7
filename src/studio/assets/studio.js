// recado studio: the integration page's live preview. Every text that comes
// from the server or the YAML is put in the page with textContent or
// createTextNode, never as HTML, so a message can never become markup.
"use strict";
(function () {
  const root = document.querySelector(".studio[data-integration]");
  if (!root) return;
  const $ = (id) => document.getElementById(id);
  const csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
  const tenant = root.dataset.tenant;
  const integration = root.dataset.integration;
  const code = $("code"), chat = $("chat"), problems = $("problems"), problemsBox = $("problems-box");
  const notes = $("notes"), draft = $("draft"), sampleProblem = $("sample-problem"), showing = $("showing");
  const servingYaml = draft.value;
  const servingShowing = showing.textContent;
  let drafting = false, timer = 0, seq = 0;
  // The rest of the picked sample's request (id, origin, contact.uid…).
  let sampleRequest = null;

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  // The YAML view, line by line, from a text (the serving file or a draft).
  function showCode(text) {
    code.replaceChildren();
    const lines = text.split("\n");
    if (lines.length > 1 && lines[lines.length - 1] === "") lines.pop();
    lines.forEach((line, i) => {
      const span = el("span", "line", line);
      span.id = "L" + (i + 1);
      span.dataset.n = String(i + 1);
      code.append(span);
    });
  }

  // WhatsApp's formatting: ```mono```, *bold*, _italic_, ~strike~, and
  // links. Markers must hug the text (`*a*`, not `* a *`) and sit at word
  // edges, as in the app.
  const MARKS = { "*": "strong", "_": "em", "~": "s" };
  const EDGE = /[\s.,;:!?()\[\]{}"'«»\-]/;
  function formatInto(parent, text) {
    let i = 0, plain = "";
    const flush = () => { if (plain) { linkify(parent, plain); plain = ""; } };
    while (i < text.length) {
      if (text.startsWith("```", i)) {
        const end = text.indexOf("```", i + 3);
        if (end > i + 3) {
          flush();
          parent.append(el("code", "mono", text.slice(i + 3, end)));
          i = end + 3;
          continue;
        }
      }
      const c = text[i];
      const tag = MARKS[c];
      const before = i === 0 ? " " : text[i - 1];
      if (tag && EDGE.test(before) && i + 1 < text.length && !/\s/.test(text[i + 1])) {
        let end = -1;
        for (let j = i + 1; j < text.length && text[j] !== "\n"; j++) {
          const after = j + 1 < text.length ? text[j + 1] : " ";
          if (text[j] === c && !/\s/.test(text[j - 1]) && j > i + 1 && EDGE.test(after)) { end = j; break; }
        }
        if (end > 0) {
          flush();
          const e = el(tag);
          formatInto(e, text.slice(i + 1, end));
          parent.append(e);
          i = end + 1;
          continue;
        }
      }
      plain += c;
      i++;
    }
    flush();
  }

  function linkify(parent, text) {
    const re = /https?:\/\/[^\s<>"]+[^\s<>".,;:!?)\]]/g;
    let last = 0, m;
    while ((m = re.exec(text))) {
      parent.append(document.createTextNode(text.slice(last, m.index)));
      const a = el("a", "", m[0]);
      a.href = m[0];
      a.rel = "noopener noreferrer";
      a.target = "_blank";
      parent.append(a);
      last = m.index + m[0].length;
    }
    parent.append(document.createTextNode(text.slice(last)));
  }

  function fileName(url) {
    try {
      const u = new URL(url);
      const last = u.pathname.split("/").filter(Boolean).pop();
      return { name: last ? decodeURIComponent(last) : u.host, host: u.host, ok: /^https?:$/.test(u.protocol) };
    } catch (e) {
      return { name: url, host: "", ok: false };
    }
  }

  function lineLink(line) {
    if (!line) return el("span");
    const a = el("a", "", "linha " + line);
    a.href = "#L" + line;
    a.title = "Ver no YAML a linha que fez esta mensagem";
    a.setAttribute("aria-label", "feita pela linha " + line + " do YAML");
    a.addEventListener("click", (ev) => { ev.preventDefault(); jump(line); });
    return a;
  }

  function jump(line) {
    const target = $("L" + line);
    if (!target) return;
    code.querySelectorAll(".hit").forEach((e) => e.classList.remove("hit"));
    target.classList.add("hit");
    code.scrollTop = target.offsetTop - code.clientHeight / 3;
    const box = $("draft-box");
    if (!drafting && box && !box.open) code.focus();
  }

  function bubble(item) {
    const m = item.message;
    const b = el("div", "bubble");
    b.dataset.type = m.type;
    if (item.line) b.dataset.line = String(item.line);
    if (m.type === "TEXT") {
      const t = el("div", "text");
      formatInto(t, m.value);
      b.append(t);
    } else if (m.type === "FILE") {
      const f = fileName(m.value);
      const card = el("div", "doc");
      const icon = el("span", "icon", (f.name.split(".").pop() || "doc").slice(0, 4).toUpperCase());
      icon.setAttribute("aria-hidden", "true");
      const info = el("div");
      info.append(el("div", "name", f.name), el("div", "meta", "Documento" + (f.host ? " · " + f.host : "")));
      card.append(icon, info);
      b.classList.add("file");
      b.append(card);
    } else if (m.type === "IMAGE") {
      const f = fileName(m.value);
      b.classList.add("img");
      const ph = el("div", "placeholder", "Imagem: " + f.name + (f.ok ? "" : " (endereço inválido)"));
      if (f.ok) {
        const img = el("img");
        img.alt = "Imagem enviada ao contato: " + f.name;
        img.referrerPolicy = "no-referrer";
        img.addEventListener("error", () => { ph.textContent = "Imagem não carregou: " + f.name; img.replaceWith(ph); });
        img.src = m.value;
        b.append(img);
      } else {
        b.append(ph);
      }
    } else if (m.type === "AUDIO") {
      const f = fileName(m.value);
      const card = el("div", "audio");
      const play = el("span", "play", "▶");
      play.setAttribute("aria-hidden", "true");
      const info = el("div");
      info.append(el("div", "wave"), el("div", "meta", "Áudio · " + f.name));
      card.append(play, info);
      b.append(card);
    } else if (m.type === "TEMPLATE") {
      b.classList.add("tpl");
      b.append(el("div", "tpl-name", "Modelo " + m.name + " (" + m.language + ")" + (item.template ? "" : " — fora do catálogo: só os valores")));
      const params = (p) => (p && p.parameters) || [];
      const filled = item.template;
      if (filled) {
        if (filled.header) b.append(el("div", "tpl-header", filled.header));
        const t = el("div", "text");
        formatInto(t, filled.body || "");
        b.append(t);
        if (filled.footer) b.append(el("div", "meta", filled.footer));
      } else {
        params(m.header).forEach((p) => b.append(el("div", "tpl-header", "Cabeçalho {{" + p.index + "}}: " + p.value)));
        const list = el("ol", "tpl-params");
        params(m.body).forEach((p) => list.append(el("li", "", "{{" + p.index + "}} = " + p.value)));
        if (list.children.length) {
          b.append(el("div", "meta", "Valores do corpo:"), list);
        }
      }
      const buttons = (filled && filled.buttons) || (m.buttons || []).map((x) => ({
        text: "Botão " + x.index, value: params(x).map((p) => p.value).join(", "),
      }));
      if (buttons.length) {
        const box = el("div", "tpl-buttons");
        buttons.forEach((x) => {
          const btn = el("div", "tpl-button", x.text);
          if (x.value) btn.append(el("small", "", x.value));
          box.append(btn);
        });
        b.append(box);
      }
    } else {
      b.append(el("code", "", JSON.stringify(m)));
    }
    const foot = el("div", "foot");
    foot.append(lineLink(item.line));
    b.append(foot);
    return b;
  }

  function showProblems(list) {
    code.querySelectorAll(".err").forEach((e) => e.classList.remove("err"));
    problems.replaceChildren();
    list.forEach((p) => {
      const li = el("li");
      if (p.line) {
        const where = el("a", "", "Linha " + p.line + (p.column ? ", coluna " + p.column : ""));
        where.href = "#L" + p.line;
        where.addEventListener("click", (ev) => { ev.preventDefault(); jump(p.line); });
        li.append(where, ": ");
        const line = $("L" + p.line);
        if (line) line.classList.add("err");
      }
      li.append(document.createTextNode(p.message));
      problems.append(li);
    });
    problemsBox.hidden = list.length === 0;
  }

  function readJson(id, what) {
    const box = $(id);
    if (!box || !box.value.trim()) return {};
    try {
      return JSON.parse(box.value);
    } catch (e) {
      throw new Error(what + " não é um JSON válido: " + e.message);
    }
  }

  async function run() {
    const mine = ++seq;
    let data, enrich;
    try {
      data = readJson("data", "O campo de dados");
      enrich = readJson("enrich", "O campo de respostas das chamadas");
      sampleProblem.hidden = true;
    } catch (e) {
      sampleProblem.textContent = e.message;
      sampleProblem.hidden = false;
      return;
    }
    const body = {
      tenant, integration, data, enrich,
      contact: { name: $("contact-name").value, key: $("contact-key").value },
      yaml: drafting ? draft.value : null,
      request: sampleRequest,
    };
    chat.setAttribute("aria-busy", "true");
    let out;
    try {
      const resp = await fetch("/studio/api/preview", {
        method: "POST",
        credentials: "same-origin",
        headers: { "content-type": "application/json", "x-csrf-token": csrf },
        body: JSON.stringify(body),
      });
      out = await resp.json();
      if (!resp.ok) out = { messages: [], errors: [{ message: (out.error && out.error.message) || "erro " + resp.status }], notes: [] };
    } catch (e) {
      out = { messages: [], errors: [{ message: "Não foi possível falar com o recado: " + e.message }], notes: [] };
    }
    if (mine !== seq) return;
    chat.replaceChildren();
    if (out.errors.length) {
      chat.append(el("p", "empty", "Com este pedido, o contato não recebe nada: veja os erros abaixo."));
    } else if (!out.messages.length) {
      chat.append(el("p", "empty", "Com este pedido, nenhuma mensagem é enviada."));
    } else {
      out.messages.forEach((m) => chat.append(bubble(m)));
    }
    chat.setAttribute("aria-busy", "false");
    showProblems(out.errors);
    notes.replaceChildren(...out.notes.map((n) => el("li", "", n)));
  }

  function schedule() {
    clearTimeout(timer);
    timer = setTimeout(run, 250);
  }

  function setDrafting(on) {
    drafting = on;
    root.querySelector(".source").classList.toggle("drafting", on);
    showing.textContent = on ? "Mostrando o rascunho (não salvo)." : servingShowing;
    showCode(on ? draft.value : servingYaml);
  }

  draft.addEventListener("input", () => { setDrafting(true); schedule(); });
  $("discard").addEventListener("click", () => { draft.value = servingYaml; setDrafting(false); schedule(); });
  $("copy").addEventListener("click", async () => {
    const done = $("copied");
    try {
      await navigator.clipboard.writeText(draft.value);
    } catch (e) {
      draft.select();
      document.execCommand("copy");
    }
    done.textContent = "YAML copiado.";
    setTimeout(() => { done.textContent = ""; }, 3000);
  });
  $("sample-form").addEventListener("input", (ev) => { if (ev.target.id !== "sample") schedule(); });
  $("sample-form").addEventListener("submit", (ev) => { ev.preventDefault(); run(); });
  const picker = $("sample");
  if (picker) {
    picker.addEventListener("change", () => {
      const opt = picker.selectedOptions[0];
      if (!opt || !opt.dataset.sample) {
        sampleRequest = null;
        schedule();
        return;
      }
      const s = JSON.parse(opt.dataset.sample);
      sampleRequest = s.request || null;
      if (s.contact) {
        $("contact-name").value = s.contact.name || "";
        $("contact-key").value = s.contact.key || "";
      }
      $("data").value = JSON.stringify(s.data === undefined ? {} : s.data, null, 2);
      if ($("enrich")) $("enrich").value = JSON.stringify(s.enrich || {}, null, 2);
      run();
    });
    // The server marks the default sample (the file's first test).
    if (picker.value) {
      picker.dispatchEvent(new Event("change"));
      return;
    }
  }
  run();
})();
