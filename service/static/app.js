// The citizen self-assessment page: welcome -> one question a screen -> result.
// Plain ES module, no framework and no build step. All text comes from
// messages.js; everything the server sends is inserted as text, never as HTML.

import { LANGUAGES, MESSAGES, t } from "./messages.js";

const API = "/api/v1";
const STORE_SESSION = "nangluc.session";
const STORE_LANG = "nangluc.lang";
const STORE_COHORT = "nangluc.cohort";
// The test is adaptive, so its length is not known in advance. The server
// estimates how far along a citizen is (from a simulation of the test:
// service/static/test-length.json); without it the bar only grows slowly.
const FALLBACK_LENGTH = 40;
const REQUEST_TIMEOUT_MS = 15000;
const RESULT_PATH = "/ket-qua";
const FINISHED_STATUSES = new Set(["finished", "completed", "complete", "done"]);

// The embeddable page (/?embed=1) posts the result to the page that frames it.
// The message's shape is public (README, "Embed in your app"): bump
// EMBED_MESSAGE_VERSION when it changes incompatibly.
const EMBED_MESSAGE_TYPE = "nangluc:result";
const EMBED_MESSAGE_VERSION = 1;

const app = document.getElementById("app");
const announcer = document.getElementById("announcer");
const langSwitch = document.getElementById("lang-switch");

const state = {
  lang: initialLanguage(),
  sessionId: storageGet(STORE_SESSION),
  framework: null,
  item: null,
  answered: 0,
  maxItems: null, // the test's upper limit, from the API
  progress: null, // the server's estimate of the share done
  lengths: null, // simulated length and time of the test (test-length.json)
  selected: null,
  busy: false,
  reading: false, // the question is being read aloud
  notice: null, // {kind: "info"|"error", key, params, retry}
  confirmRestart: false,
  result: null,
  screen: "loading",
  wards: [],
  cohort: null, // {code, phase} from a training class's link
  test: null, // a named test (/?test=NAME); null: the city's default test
  testInfo: null, // that test as GET /tests describes it
};
state.cohort = initialCohort();
state.test = initialTest();

// ---------------------------------------------------------------- storage --

function storageGet(key) {
  try {
    return window.localStorage.getItem(key);
  } catch {
    return null; // private mode or storage disabled: the page still works
  }
}

function storageSet(key, value) {
  try {
    if (value === null) {
      window.localStorage.removeItem(key);
    } else {
      window.localStorage.setItem(key, value);
    }
  } catch {
    // Without storage the test cannot be resumed, but it can still be taken.
  }
}

function initialLanguage() {
  const fromUrl = new URLSearchParams(window.location.search).get("lang");
  if (fromUrl && LANGUAGES.includes(fromUrl)) {
    storageSet(STORE_LANG, fromUrl);
    return fromUrl;
  }
  const stored = storageGet(STORE_LANG);
  return stored && LANGUAGES.includes(stored) ? stored : "vi";
}

// -------------------------------------------------------------------- api --

class NetworkError extends Error {}

async function api(method, path, body) {
  const controller = new AbortController();
  const timer = window.setTimeout(() => controller.abort(), REQUEST_TIMEOUT_MS);
  const options = { method, headers: { Accept: "application/json" }, signal: controller.signal };
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(API + path, options);
  } catch (error) {
    throw new NetworkError(String(error));
  } finally {
    window.clearTimeout(timer);
  }
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  return { status: response.status, data };
}

function sessionPath(suffix = "") {
  return `/sessions/${encodeURIComponent(state.sessionId)}${suffix}?language=${state.lang}`;
}

// ---------------------------------------------------------------- helpers --

/** Create an element: h("p", {class: "x"}, "text", child, ...). */
function h(tag, attrs = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) {
      continue;
    }
    if (name.startsWith("on")) {
      element.addEventListener(name.slice(2), value);
    } else if (value === true) {
      element.setAttribute(name, "");
    } else {
      element.setAttribute(name, String(value));
    }
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) {
      continue;
    }
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

function msg(key, params) {
  return t(state.lang, key, params);
}

/** A name given as {"vi": .., "en": ..}, as a plain string, or missing. */
function localName(name, fallback) {
  if (typeof name === "string" && name) {
    return name;
  }
  if (name && typeof name === "object") {
    return name[state.lang] || name.vi || name.en || fallback;
  }
  return fallback;
}

function isFinished(payload) {
  return FINISHED_STATUSES.has(String(payload.status)) || payload.item === null;
}

function announce(text) {
  // Clear first so the same words are announced again when repeated.
  announcer.textContent = "";
  window.setTimeout(() => {
    announcer.textContent = text;
  }, 50);
}

function focusHeading() {
  const heading = app.querySelector("[data-focus]");
  if (heading) {
    heading.focus({ preventScroll: false });
  }
  window.scrollTo(0, 0);
}

function setPath(path) {
  const url = new URL(window.location.href);
  if (url.pathname !== path) {
    url.pathname = path;
    window.history.replaceState(null, "", url);
  }
}

// -------------------------------------------------------------- framework --

function areaName(code, fromResult) {
  const areas = (state.framework && state.framework.areas) || [];
  const area = areas.find((a) => String(a.code ?? a.area ?? a.id) === String(code));
  return localName(area && area.name, localName(fromResult, msg("areaFallback", { code })));
}

/** The framework's level code of a level given by the API (any integer), or null. */
function levelCode(level) {
  const code = Number(level);
  return Number.isInteger(code) ? code : null;
}

/** The bank's levels as the API gives them (GET /framework), lowest first. */
function frameworkLevels() {
  return (state.framework && Array.isArray(state.framework.levels) && state.framework.levels) || [];
}

function levelBand(level) {
  const code = levelCode(level);
  return frameworkLevels().find((lv) => Number(lv.level) === code) || null;
}

/** A level's name: the framework's (from the API), else "Level n". */
function levelName(level) {
  const band = levelBand(level);
  const fallback = msg("levelFallback", { code: String(level) });
  return band ? localName(band.name, fallback) : fallback;
}

/**
 * A colour step 1..5 for a level: its position among the framework's levels
 * spread over the five colours, so the lowest level is always the first colour
 * and the top level the last, however many levels the framework has.
 */
function levelShade(level) {
  const levels = frameworkLevels();
  const position = levels.findIndex((lv) => Number(lv.level) === levelCode(level));
  if (position < 0 || levels.length < 2) {
    return 1;
  }
  return 1 + Math.round((4 * position) / (levels.length - 1));
}

/** The scores where levels begin (above the lowest), for the bars' tick marks. */
function levelCuts() {
  return frameworkLevels()
    .slice(1)
    .map((lv) => Number(lv.lower))
    .filter((at) => Number.isFinite(at) && at > 0 && at < 100);
}

function basicSkillCount() {
  const skills = state.framework && state.framework.basic_skills;
  return Array.isArray(skills) ? skills.length : 0;
}

/** "about 7 in 10": how sure a level is, in tenths a citizen can picture. */
function inTen(probability) {
  return Math.max(0, Math.min(10, Math.round(10 * Number(probability))));
}

async function loadFramework() {
  try {
    const { status, data } = await api("GET", "/framework");
    if (status === 200 && data) {
      state.framework = data;
    }
  } catch {
    // The result's own level names and "Area n" labels are used instead.
  }
}

async function loadLengths() {
  try {
    const response = await fetch("/static/test-length.json");
    if (response.ok) {
      state.lengths = await response.json();
    }
  } catch {
    state.lengths = null; // the page says less, nothing breaks
  }
}

async function loadWards() {
  // The city's list of wards and communes: the same list planner reports group by.
  try {
    const reply = await api("GET", "/wards");
    const units = reply.status === 200 && reply.data ? reply.data.units : null;
    state.wards = Array.isArray(units) ? units.map((unit) => String(unit.name)) : [];
  } catch {
    state.wards = [];
  }
}

/** A training class's link (/?cohort=CODE&phase=before|after), kept for this tab. */
function initialCohort() {
  const params = new URLSearchParams(window.location.search);
  const code = (params.get("cohort") || "").trim().toUpperCase();
  const phase = params.get("phase");
  if (/^[0-9A-Z]{4,16}$/.test(code) && (phase === "before" || phase === "after")) {
    storageSet(STORE_COHORT, JSON.stringify({ code, phase }));
    // Out of the address bar, so a reload or a bookmark does not tag a later test.
    const url = new URL(window.location.href);
    url.searchParams.delete("cohort");
    url.searchParams.delete("phase");
    window.history.replaceState(window.history.state, "", url);
    return { code, phase };
  }
  try {
    const stored = JSON.parse(storageGet(STORE_COHORT) || "null");
    return stored && stored.code && stored.phase ? stored : null;
  } catch {
    return null;
  }
}

/** A named test (/?test=NAME); it stays in the address bar, so a bookmark opens it again. */
function initialTest() {
  const name = (new URLSearchParams(window.location.search).get("test") || "").trim();
  return /^[a-z0-9][a-z0-9._-]{0,62}$/.test(name) ? name : null;
}

async function loadTest() {
  if (!state.test) {
    state.testInfo = null;
    return;
  }
  try {
    const reply = await api("GET", `/tests?language=${state.lang}`);
    if (reply.status !== 200 || !Array.isArray(reply.data)) {
      return; // the session API still names the test; the page says less
    }
    const found = reply.data.find((test) => test.name === state.test);
    if (found) {
      state.testInfo = found;
    } else {
      unknownTest();
    }
  } catch {
    state.testInfo = null;
  }
}

/** The link named a test the city does not offer: say so, and offer the city's test. */
function unknownTest() {
  state.notice = { kind: "info", key: "testUnknown", params: { name: state.test } };
  state.test = null;
  state.testInfo = null;
  const url = new URL(window.location.href);
  url.searchParams.delete("test");
  window.history.replaceState(window.history.state, "", url);
}

// ------------------------------------------------------------------ embed --

/**
 * The origins this page may post its result to, from the server
 * (<meta name="nangluc-embed">, only on the embeddable page); null otherwise.
 */
function embedOrigins() {
  const meta = document.querySelector('meta[name="nangluc-embed"]');
  if (!meta) {
    return null;
  }
  return (meta.getAttribute("content") || "").split(/\s+/).filter(Boolean);
}

function originOf(text) {
  try {
    const url = new URL(text);
    return url.protocol === "http:" || url.protocol === "https:" ? url.origin : null;
  } catch {
    return null;
  }
}

/**
 * The origin of the page that frames this one, if it is on the allow-list;
 * null when the page is not framed or the parent is not allowed. The browser
 * delivers a message only to a parent of exactly that origin, so a wrong
 * guess (a forged ?origin=) reaches no one.
 */
function parentOrigin() {
  const allowed = embedOrigins();
  if (!allowed || !allowed.length || window.parent === window) {
    return null;
  }
  const ancestors = window.location.ancestorOrigins; // Chromium and Safari
  const candidates = [
    ancestors && ancestors.length ? ancestors[0] : null,
    new URLSearchParams(window.location.search).get("origin"), // given by the portal's snippet
    document.referrer,
  ];
  for (const candidate of candidates) {
    const origin = candidate ? originOf(candidate) : null;
    if (origin && allowed.includes(origin)) {
      return origin;
    }
  }
  return null;
}

/** Post the result to the embedding page: the scores and advice, never the session id. */
function postResult(result) {
  const target = parentOrigin();
  if (!target) {
    return;
  }
  const shared = { ...result };
  delete shared.session_id;
  window.parent.postMessage(
    { type: EMBED_MESSAGE_TYPE, version: EMBED_MESSAGE_VERSION, result: shared },
    target,
  );
}

// ---------------------------------------------------------------- actions --

async function resume({ greet = false } = {}) {
  if (!state.sessionId) {
    showWelcome();
    return;
  }
  state.screen = "loading";
  render();
  let reply;
  try {
    reply = await api("GET", sessionPath());
  } catch {
    showNotice("error", "errorNetwork", {}, resume);
    return;
  }
  if (reply.status === 404 || reply.status === 400 || reply.status === 422) {
    forgetSession();
    state.notice = { kind: "info", key: "errorGone" };
    showWelcome();
    return;
  }
  if (reply.status !== 200 || !reply.data) {
    showNotice("error", "errorServer", {}, resume);
    return;
  }
  if (state.test && reply.data.test && reply.data.test.name !== state.test) {
    // The link names another test than the one kept on this device: start that one.
    forgetSession();
    showWelcome();
    return;
  }
  state.answered = Number(reply.data.answered) || 0;
  state.maxItems = Number(reply.data.max_items) || null;
  state.progress = typeof reply.data.progress === "number" ? reply.data.progress : null;
  if (isFinished(reply.data)) {
    await showResult();
    return;
  }
  const sameItem = state.item && reply.data.item && state.item.id === reply.data.item.id;
  if (!sameItem) {
    state.selected = null;
  }
  state.item = reply.data.item;
  if (greet && state.answered > 0 && !state.notice) {
    state.notice = { kind: "info", key: "welcomeBack", params: { n: state.answered + 1 } };
  }
  showQuestion();
}

async function startTest(event) {
  event.preventDefault();
  if (state.busy) {
    return;
  }
  const form = event.currentTarget;
  const ward = form.elements.ward.value.trim().normalize("NFC");
  const ageGroup = form.elements.age_group.value;
  const body = { language: state.lang };
  if (ward) {
    body.ward = ward;
  }
  if (ageGroup) {
    body.age_group = ageGroup;
  }
  if (state.cohort) {
    body.cohort = { code: state.cohort.code, phase: state.cohort.phase };
  }
  if (state.test) {
    body.test = state.test;
    const offered = state.testInfo && state.testInfo.languages;
    if (Array.isArray(offered) && offered.length && !offered.includes(state.lang)) {
      body.language = offered[0]; // the questions come in a language the test has
    }
  }
  state.busy = true;
  state.notice = null;
  render();
  let reply;
  let expired = false;
  try {
    reply = await api("POST", "/sessions", body);
    if ((reply.status === 404 || reply.status === 409) && state.cohort) {
      // The class's link has expired (or was mistyped): the test still counts
      // for the city, just not for the class.
      delete body.cohort;
      forgetCohort();
      reply = await api("POST", "/sessions", body);
      expired = true;
    }
  } catch {
    reply = null;
  }
  state.busy = false;
  if (reply && reply.status === 404 && state.test && !state.cohort) {
    unknownTest();
    render();
    return;
  }
  if (!reply || reply.status !== 201 || !reply.data || !reply.data.session_id) {
    // "Try again" sends the same form again (what was typed is kept).
    const again = () => app.querySelector("form.start-form").requestSubmit();
    showNotice("error", "errorStart", {}, again);
    return;
  }
  state.sessionId = String(reply.data.session_id);
  storageSet(STORE_SESSION, state.sessionId);
  // A class's link tags one test: the next test on this device is a person's own.
  forgetCohort();
  state.answered = 0;
  state.maxItems = Number(reply.data.max_items) || null;
  state.progress = typeof reply.data.progress === "number" ? reply.data.progress : null;
  state.selected = null;
  state.item = reply.data.item;
  if (expired) {
    state.notice = { kind: "info", key: "cohortExpired" };
  }
  if (isFinished(reply.data)) {
    await showResult();
    return;
  }
  showQuestion();
}

async function submitAnswer() {
  if (state.busy || state.selected === null || !state.item) {
    return;
  }
  stopReading();
  const answer = { item_id: state.item.id, response: state.selected };
  state.busy = true;
  state.notice = null;
  render();
  let reply;
  try {
    reply = await api("POST", sessionPath("/answers"), answer);
  } catch {
    state.busy = false;
    // Retrying the same answer is safe: the server records it only once.
    showNotice("error", "errorNetwork", {}, submitAnswer);
    return;
  }
  state.busy = false;
  if (reply.status === 200 && reply.data) {
    state.answered = Number(reply.data.answered) || state.answered + 1;
    state.maxItems = Number(reply.data.max_items) || state.maxItems;
    state.progress = typeof reply.data.progress === "number" ? reply.data.progress : null;
    state.selected = null;
    if (isFinished(reply.data)) {
      await showResult();
      return;
    }
    state.item = reply.data.item;
    showQuestion();
    return;
  }
  if (reply.status === 409 || reply.status === 422) {
    // A double tap or a second tab moved the test on: show where it is now.
    const before = state.item.id;
    await resume();
    if (state.item && state.item.id !== before && state.screen === "question") {
      state.notice = { kind: "info", key: "alreadyRecorded" };
      render();
    }
    return;
  }
  if (reply.status === 404) {
    forgetSession();
    state.notice = { kind: "info", key: "errorGone" };
    showWelcome();
    return;
  }
  showNotice("error", "errorServer", {}, submitAnswer);
}

async function showResult() {
  state.screen = "loading";
  render();
  let reply;
  try {
    reply = await api("GET", sessionPath("/result"));
  } catch {
    showNotice("error", "errorNetwork", {}, showResult);
    return;
  }
  if (reply.status === 404) {
    forgetSession();
    state.notice = { kind: "info", key: "errorGone" };
    showWelcome();
    return;
  }
  if (reply.status !== 200 || !reply.data) {
    showNotice("error", "errorServer", {}, showResult);
    return;
  }
  state.result = reply.data;
  state.item = null;
  state.confirmRestart = false;
  state.screen = "result";
  setPath(RESULT_PATH);
  render();
  announce(msg("resultHeading"));
  focusHeading();
  postResult(reply.data);
}

function forgetCohort() {
  state.cohort = null;
  storageSet(STORE_COHORT, null);
}

function forgetSession() {
  state.sessionId = null;
  state.item = null;
  state.answered = 0;
  state.selected = null;
  state.result = null;
  storageSet(STORE_SESSION, null);
}

function restart() {
  forgetSession();
  state.confirmRestart = false;
  state.notice = null;
  showWelcome();
}

function showWelcome() {
  state.screen = "welcome";
  setPath("/");
  render();
  focusHeading();
}

function showQuestion() {
  stopReading();
  state.screen = "question";
  state.confirmRestart = false;
  setPath("/");
  render();
  announce(msg("questionCounter", { n: state.answered + 1 }));
  focusHeading();
}

function showNotice(kind, key, params, retry) {
  state.notice = { kind, key, params, retry };
  if (state.screen === "loading") {
    state.screen = "problem";
  }
  render();
  const notice = app.querySelector(".notice");
  if (notice) {
    notice.focus();
  }
}

async function switchLanguage() {
  const next = state.lang === "vi" ? "en" : "vi";
  state.lang = next;
  storageSet(STORE_LANG, next);
  const url = new URL(window.location.href);
  if (next === "vi") {
    url.searchParams.delete("lang");
  } else {
    url.searchParams.set("lang", next);
  }
  window.history.replaceState(null, "", url);
  applyLanguage();
  await loadTest(); // the test's title and description in the new language
  if (state.screen === "question") {
    // The current question is fetched again in the new language; the
    // chosen option stays chosen because it is the same item.
    await resume();
  } else if (state.screen === "result") {
    await showResult();
  } else {
    render();
  }
}

function applyLanguage() {
  document.documentElement.lang = state.lang;
  document.title = msg("pageTitle");
  document.getElementById("brand").textContent = msg("brand");
  const other = state.lang === "vi" ? "en" : "vi";
  langSwitch.textContent = msg("switchTo");
  langSwitch.setAttribute("lang", other);
  langSwitch.setAttribute("aria-label", msg("switchToLabel"));
  const framework = state.framework && state.framework.name ? localName(state.framework.name, "") : "";
  document.getElementById("footer-text").textContent = framework
    ? msg("footerFramework", { framework })
    : msg("footer");
}

// --------------------------------------------------------------- screens --

function noticeView() {
  const notice = state.notice;
  if (!notice) {
    return null;
  }
  const role = notice.kind === "error" ? "alert" : "status";
  return h(
    "div",
    { class: `notice notice-${notice.kind}`, role, tabindex: "-1" },
    h("p", {}, msg(notice.key, notice.params || {})),
    notice.retry
      ? h(
          "button",
          {
            type: "button",
            class: "button button-primary",
            onclick: () => {
              const retry = notice.retry;
              state.notice = null;
              retry();
            },
          },
          msg("retry"),
        )
      : null,
  );
}

function welcomeView() {
  const ageOptions = [h("option", { value: "" }, msg("ageNone"))];
  // The API says which age groups it accepts; our labels name the known ones.
  const labels = MESSAGES[state.lang].ageGroups;
  const codes = (state.framework && state.framework.age_groups) || Object.keys(labels);
  for (const code of codes) {
    ageOptions.push(h("option", { value: code }, labels[code] || code));
  }
  const wardOptions = state.wards.map((ward) => h("option", { value: ward }));
  return h(
    "section",
    { class: "screen welcome", "aria-labelledby": "welcome-heading" },
    noticeView(),
    h(
      "h1",
      { id: "welcome-heading", tabindex: "-1", "data-focus": true },
      state.testInfo ? state.testInfo.title : msg("welcomeHeading"),
    ),
    h(
      "p",
      { class: "lead" },
      state.testInfo && state.testInfo.description
        ? state.testInfo.description
        : msg("welcomeIntro"),
    ),
    state.cohort
      ? h(
          "p",
          { class: "cohort-note", role: "note" },
          msg(state.cohort.phase === "after" ? "cohortAfter" : "cohortBefore", {
            code: state.cohort.code,
          }),
        )
      : null,
    h(
      "ul",
      { class: "points" },
      lengthPoints().map((point) => h("li", {}, point)),
      // A fixed form asks the same questions of everyone: no "easier or harder".
      MESSAGES[state.lang].welcomePoints
        .slice(state.testInfo && state.testInfo.kind === "form" ? 1 : 0)
        .map((point) => h("li", {}, point)),
    ),
    h(
      "form",
      { class: "start-form", onsubmit: startTest, novalidate: true },
      h(
        "fieldset",
        { class: "optional" },
        h("legend", {}, msg("optionalHeading")),
        h("p", { class: "help" }, msg("optionalHelp")),
        h("label", { for: "ward" }, msg("wardLabel")),
        h("input", {
          id: "ward",
          name: "ward",
          type: "text",
          list: "ward-list",
          autocomplete: "off",
          maxlength: "100",
          "aria-describedby": "ward-hint",
        }),
        h("p", { id: "ward-hint", class: "help" }, msg("wardHint")),
        h("datalist", { id: "ward-list" }, wardOptions),
        h("label", { for: "age_group" }, msg("ageLabel")),
        h("select", { id: "age_group", name: "age_group" }, ageOptions),
      ),
      h(
        "button",
        {
          type: "submit",
          class: "button button-primary button-big",
          disabled: state.busy,
          "aria-busy": state.busy ? "true" : null,
        },
        state.busy ? msg("starting") : msg("start"),
      ),
    ),
  );
}

/** How long the test takes, from the simulation of the test the page reads. */
function lengthPoints() {
  const named = state.testInfo;
  if (named && !named.default) {
    // Another test than the one the length table was simulated for: its own limits.
    return named.kind === "form"
      ? [msg("formLength", { n: named.max_items })]
      : [msg("testLength", { max: named.max_items })];
  }
  const lengths = state.lengths;
  if (!lengths || !lengths.questions || !lengths.minutes) {
    return [msg("welcomeLengthAny")];
  }
  return [
    msg("welcomeTime", { median: lengths.minutes.median, p90: lengths.minutes.p90 }),
    msg("welcomeLength", { median: lengths.questions.median, max: lengths.questions.max }),
  ];
}

function progressView() {
  const number = state.answered + 1;
  // The server's estimate of the share done; without one, a slow, honest crawl.
  const estimate = Number.isFinite(state.progress)
    ? state.progress
    : state.answered / (state.maxItems || FALLBACK_LENGTH);
  const fraction = Math.max(0, Math.min(estimate, 0.95));
  const percent = Math.round(fraction * 100);
  const named = state.testInfo && !state.testInfo.default ? state.testInfo : null;
  // The length table was simulated for the city's test, not for another named one.
  const lengths = !named && state.lengths && state.lengths.questions;
  let about = lengths
    ? msg("progressAbout", { median: lengths.median, max: lengths.max })
    : msg("progressAboutAny");
  if (named) {
    about = msg(named.kind === "form" ? "progressOf" : "progressAtMost", { max: named.max_items });
  }
  // Past the usual length, say honestly how many questions may still come.
  const left = state.maxItems ? state.maxItems - number : null;
  const usual = lengths ? lengths.median : 0;
  if ((lengths || named) && number > usual && left !== null && left <= 10) {
    about = left > 0 ? msg("progressLeft", { k: left }) : msg("progressLast");
  }
  const fill = h("div", { class: "progress-fill" });
  fill.style.width = `${percent}%`;
  return h(
    "div",
    { class: "progress" },
    h(
      "p",
      { class: "progress-text" },
      h("strong", { class: "counter" }, msg("questionCounter", { n: number })),
      h("span", { class: "progress-about" }, about),
    ),
    h(
      "div",
      {
        class: "progress-track",
        role: "progressbar",
        "aria-label": msg("progressLabel"),
        "aria-valuemin": "0",
        "aria-valuemax": "100",
        "aria-valuenow": String(percent),
        "aria-valuetext": msg("progressValue", { n: number, percent }),
      },
      fill,
    ),
  );
}

/** A "start again" button that asks before the session is forgotten. */
function restartControl(labelKey, questionKey, yesKey, noKey, buttonClass) {
  if (!state.confirmRestart) {
    return h(
      "button",
      {
        type: "button",
        class: buttonClass,
        onclick: () => {
          state.confirmRestart = true;
          render();
          const yes = app.querySelector(".confirm .button-danger");
          if (yes) {
            yes.focus();
          }
        },
      },
      msg(labelKey),
    );
  }
  return h(
    "div",
    { class: "confirm", role: "alertdialog", "aria-labelledby": "confirm-text" },
    h("p", { id: "confirm-text" }, msg(questionKey)),
    h(
      "div",
      { class: "confirm-buttons" },
      h("button", { type: "button", class: "button button-danger", onclick: restart }, msg(yesKey)),
      h(
        "button",
        {
          type: "button",
          class: "button button-secondary",
          onclick: () => {
            state.confirmRestart = false;
            render();
          },
        },
        msg(noKey),
      ),
    ),
  );
}

// ------------------------------------------------------------ read aloud --
// The browser's own speech synthesis reads the question and its options, in
// the page's language (a vi-VN voice for Vietnamese). Without such a voice the
// button is not shown: a wrong-language voice would be worse than none.

const SPEECH_LANG = { vi: "vi", en: "en" };

function speech() {
  return "speechSynthesis" in window && typeof window.SpeechSynthesisUtterance === "function"
    ? window.speechSynthesis
    : null;
}

function voiceFor(lang) {
  const synth = speech();
  if (!synth) {
    return null;
  }
  const prefix = SPEECH_LANG[lang];
  const voices = synth.getVoices() || [];
  const matching = voices.filter((voice) => String(voice.lang).toLowerCase().replace("_", "-").startsWith(prefix));
  const exact = lang === "vi" ? matching.find((voice) => /^vi-vn$/i.test(voice.lang.replace("_", "-"))) : null;
  return exact || matching[0] || null;
}

function stopReading() {
  const synth = speech();
  if (synth && state.reading) {
    synth.cancel();
  }
  state.reading = false;
}

function readAloud(item) {
  const synth = speech();
  const voice = voiceFor(state.lang);
  if (!synth || !voice) {
    return;
  }
  if (state.reading) {
    stopReading();
    render();
    return;
  }
  const parts = [String(item.text)];
  (item.options || []).forEach((option, index) => {
    parts.push(msg("optionSpoken", { n: index + 1, text: String(option) }));
  });
  const utterance = new window.SpeechSynthesisUtterance(parts.join(" "));
  utterance.voice = voice;
  utterance.lang = voice.lang;
  utterance.rate = 0.9; // a little slower than usual, for older listeners
  utterance.onend = () => {
    state.reading = false;
    render();
  };
  utterance.onerror = utterance.onend;
  synth.cancel();
  state.reading = true;
  synth.speak(utterance);
  render();
}

function readAloudButton(item) {
  if (!voiceFor(state.lang)) {
    return null;
  }
  return h(
    "button",
    {
      type: "button",
      class: "button button-secondary read-aloud",
      "aria-pressed": state.reading ? "true" : "false",
      onclick: () => readAloud(item),
    },
    h("span", { class: "read-aloud-icon", "aria-hidden": "true" }, state.reading ? "■" : "🔊"),
    state.reading ? msg("stopReading") : msg("readAloud"),
  );
}

function questionView() {
  const item = state.item;
  const options = (item.options || []).map((text, index) => {
    const chosen = state.selected === index;
    return h(
      "li",
      {},
      h(
        "button",
        {
          type: "button",
          class: chosen ? "option option-chosen" : "option",
          "aria-pressed": chosen ? "true" : "false",
          "data-index": String(index),
          disabled: state.busy,
          onclick: () => {
            state.selected = index;
            state.notice = null;
            render();
            const again = app.querySelector(`.option[data-index="${index}"]`);
            if (again) {
              again.focus();
            }
          },
        },
        h("span", { class: "option-mark", "aria-hidden": "true" }, chosen ? "✓" : ""),
        h("span", { class: "option-text" }, String(text)),
      ),
    );
  });
  const restartArea = restartControl("restart", "restartQuestion", "restartYes", "restartNo", "button button-link");
  return h(
    "section",
    { class: "screen question", "aria-labelledby": "question-text", "data-item-id": String(item.id) },
    progressView(),
    noticeView(),
    h(
      "h1",
      { id: "question-text", class: "question-text", tabindex: "-1", "data-focus": true },
      String(item.text),
    ),
    readAloudButton(item),
    h(
      "p",
      { class: "help", id: "choose-hint" },
      state.selected === null ? msg("chooseHint") : msg("chosenHint"),
    ),
    h("ul", { class: "options", "aria-labelledby": "question-text" }, options),
    h(
      "div",
      { class: "actions" },
      h(
        "button",
        {
          type: "button",
          class: "button button-primary button-big continue",
          disabled: state.selected === null || state.busy,
          "aria-busy": state.busy ? "true" : null,
          onclick: submitAnswer,
        },
        state.busy ? msg("sending") : msg("continue"),
      ),
    ),
    h("div", { class: "restart" }, restartArea),
  );
}

function barView(area) {
  const score = Math.max(0, Math.min(100, Number(area.score)));
  const fill = h("div", { class: `bar-fill level-${levelShade(area.level)}` });
  fill.style.width = `${score}%`;
  const ticks = levelCuts().map((at) => {
    const tick = h("span", { class: "bar-tick" });
    tick.style.left = `${at}%`;
    return tick;
  });
  const value = msg("areaScore", { level: area.level_name || levelName(area.level), score: Math.round(score) });
  return h(
    "li",
    { class: "bar-row", "data-area": String(area.area) },
    h(
      "div",
      { class: "bar-label" },
      h("span", { class: "bar-name" }, areaName(area.area, area.name)),
      h("span", { class: "bar-value" }, value),
    ),
    h("div", { class: "bar-track", "aria-hidden": "true" }, fill, ticks),
  );
}

function resultView() {
  const result = state.result;
  const overall = result.overall || {};
  const areas = Array.isArray(result.areas) ? result.areas : [];
  const code = levelCode(overall.level);
  // What the level means, in the framework's own words (its level descriptions).
  const band = levelBand(overall.level);
  const meaning = band && band.description ? localName(band.description, null) : null;
  // The 95% interval of the true score, as the API states it.
  const interval = Array.isArray(overall.interval) ? overall.interval.map(Number) : [];
  const low = Math.round(interval[0]);
  const high = Math.round(interval[1]);
  return h(
    "section",
    { class: "screen result", "aria-labelledby": "result-heading" },
    noticeView(),
    h("h1", { id: "result-heading", tabindex: "-1", "data-focus": true }, msg("resultHeading")),
    state.testInfo && !state.testInfo.default
      ? h("p", { class: "result-test" }, msg("resultTest", { title: state.testInfo.title }))
      : null,
    h(
      "div",
      { class: "overall" },
      h(
        "p",
        { class: "overall-label" },
        // A test of one area: its overall result is that area's.
        areas.length === 1 && areas[0].name
          ? msg("overallLabelArea", { area: areas[0].name })
          : msg("overallLabel"),
      ),
      h("p", { class: "overall-level", "data-level": code ?? "" }, overall.level_name || levelName(overall.level)),
      h("p", { class: "overall-score" }, msg("scoreOutOf", { score: Math.round(Number(overall.score)) })),
      meaning ? h("p", { class: "overall-meaning" }, meaning) : null,
      Number.isFinite(low) && Number.isFinite(high) && high > low
        ? h("p", { class: "help interval" }, msg("interval", { low, high }))
        : null,
      // Uncertain only when the test's own rule did not settle the level.
      overall.settled === false
        ? h(
            "div",
            { class: "note", role: "note" },
            h("p", {}, msg("notSettled", { n: inTen(overall.probability) })),
            h("p", {}, result.stop_reason === "max_items" ? msg("notSettledLength") : msg("notSettledWhy")),
            h("p", {}, msg("notSettledAgain")),
          )
        : null,
      result.answered ? h("p", { class: "help" }, msg("answeredCount", { n: result.answered })) : null,
    ),
    h("h2", {}, areas.length > 1 ? msg("areasHeading", { n: areas.length }) : msg("areasHeadingAny")),
    h("ul", { class: "chart" }, areas.map(barView)),
    h("p", { class: "help" }, msg("chartCaption")),
    areas.some((area) => area.settled === false) ? h("p", { class: "help" }, msg("areasLessSure")) : null,
    adviceView(result.advice),
    h(
      "div",
      { class: "restart" },
      restartControl("newTest", "newTestQuestion", "newTestYes", "newTestNo", "button button-secondary button-big"),
    ),
  );
}

/** A {"vi", "en"} text from the API in the page's language. */
function said(text) {
  return text ? localName(text, "") : "";
}

/** One area's next steps: the learning goals, each marked with its basic skills. */
function areaStepsView(area) {
  return h(
    "section",
    { class: "advice-area", "data-area": String(area.area) },
    h("h3", {}, said(area.name)),
    h(
      "ul",
      { class: "steps" },
      area.steps.map((step) =>
        h(
          "li",
          { class: "step", "data-criterion": String(step.criterion) },
          h("span", { class: "step-goal" }, said(step.goal)),
          step.basic_skills.length
            ? h(
                "span",
                { class: "basic-skills" },
                step.basic_skills.map((skill) =>
                  h(
                    "span",
                    { class: "basic-skill" },
                    h("span", { "aria-hidden": "true" }, "★ "),
                    h("span", { class: "visually-hidden" }, msg("basicSkillLabel")),
                    said(skill.name),
                  ),
                ),
              )
            : null,
        ),
      ),
    ),
  );
}

/**
 * What to learn next, exactly as the API's advice says (the server decides
 * which criteria and in which order; the page only shows them). The first
 * two areas are open, the others one tap away so the page stays short.
 */
function adviceView(advice) {
  if (!advice || !Array.isArray(advice.areas)) {
    return null;
  }
  const withSteps = advice.areas.filter((area) => Array.isArray(area.steps) && area.steps.length);
  const atTop = advice.areas.filter((area) => area.top);
  const shown = withSteps.slice(0, 2);
  const more = withSteps.slice(2);
  return h(
    "div",
    { class: advice.top_overall ? "next next-top" : "next", "data-top": advice.top_overall ? "true" : "false" },
    h("h2", {}, advice.top_overall ? msg("nextHeadingTop") : msg("nextHeading")),
    h("p", { class: "advice-message" }, said(advice.message)),
    advice.top_overall ? h("p", { class: "advice-help" }, said(advice.help)) : null,
    advice.more ? h("p", {}, said(advice.more)) : null,
    // The star note only when a shown step belongs to a basic skill of the framework.
    withSteps.some((area) => area.steps.some((step) => step.basic_skills && step.basic_skills.length)) &&
    !advice.top_overall
      ? h("p", { class: "help" }, msg("basicSkillNote", { n: basicSkillCount() }))
      : null,
    shown.map(areaStepsView),
    more.length
      ? h(
          "details",
          { class: "more-areas" },
          h("summary", {}, msg("moreAreas", { n: more.length })),
          more.map(areaStepsView),
        )
      : null,
    atTop.length && !advice.top_overall
      ? h("p", { class: "help top-areas" }, msg("topAreas", { areas: atTop.map((area) => said(area.name)).join(", ") }))
      : null,
    advice.top_overall ? null : h("p", { class: "advice-help" }, said(advice.help)),
  );
}

function loadingView() {
  return h("p", { class: "loading", role: "status" }, msg("loading"));
}

function problemView() {
  return h("section", { class: "screen problem" }, noticeView());
}

function render() {
  let view;
  if (state.screen === "welcome") {
    view = welcomeView();
  } else if (state.screen === "question" && state.item) {
    view = questionView();
  } else if (state.screen === "result" && state.result) {
    view = resultView();
  } else if (state.screen === "problem") {
    view = problemView();
  } else {
    view = loadingView();
  }
  // Keep what the citizen typed on the welcome form across re-renders.
  const ward = app.querySelector("#ward");
  const age = app.querySelector("#age_group");
  const kept = ward && age ? { ward: ward.value, age: age.value } : null;
  app.replaceChildren(view);
  if (kept && state.screen === "welcome") {
    app.querySelector("#ward").value = kept.ward;
    app.querySelector("#age_group").value = kept.age;
  }
  // Hooks for the end-to-end tests (and harmless for everyone else).
  app.dataset.screen = state.screen;
  app.dataset.answered = String(state.answered);
  app.dataset.busy = state.busy ? "true" : "false";
}

// ------------------------------------------------------------------- main --

langSwitch.addEventListener("click", () => {
  stopReading();
  switchLanguage();
});
// Voices often arrive after the page has loaded: show the button when they do.
if (speech() && typeof speech().addEventListener === "function") {
  speech().addEventListener("voiceschanged", () => {
    if (state.screen === "question") {
      render();
    }
  });
}
applyLanguage();
render();
await Promise.all([loadFramework(), loadWards(), loadLengths(), loadTest()]);
applyLanguage(); // the footer names the framework the API serves
await resume({ greet: true });
