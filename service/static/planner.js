// Planner page: level shares of true scores by group, with 95% intervals, from the
// differentially private releases (GET /api/v1/reports/levels), cohorts and CSV.
// Plain ES module, no framework. Everything the server sends is inserted as text.

const API = "/api/v1";
const KEY_STORE = "nangluc.planner-key"; // sessionStorage: gone when the tab closes
const LANG_STORE = "nangluc.lang";
const SVG = "http://www.w3.org/2000/svg";

const TEXT = {
  vi: {
    title: "Báo cáo năng lực số cho người lập kế hoạch",
    brand: "Năng lực số · Báo cáo",
    otherLanguage: "English",
    keyHeading: "Nhập khóa báo cáo",
    keyHelp:
      "Khóa do quản trị viên cấp cho người lập kế hoạch. Khóa chỉ được giữ trong thẻ trình duyệt này và mất khi đóng thẻ.",
    keyLabel: "Khóa báo cáo",
    keySubmit: "Mở báo cáo",
    keyWrong: "Khóa không đúng hoặc không phải khóa báo cáo.",
    keyMissing: "Hãy nhập khóa báo cáo.",
    signOut: "Quên khóa",
    groupBy: "Chia theo",
    groups: {
      all: "Toàn thành phố",
      ward: "Phường, xã",
      age_group: "Nhóm tuổi",
      ward_age_group: "Phường, xã × nhóm tuổi",
      cohort: "Lớp học (trước/sau)",
    },
    measure: "Chỉ số",
    overall: "Điểm chung",
    area: "Lĩnh vực",
    competence: "Năng lực thành phần",
    atLeast: "Tỷ lệ đạt từ mức",
    none: "Không chọn",
    from: "Từ ngày",
    to: "Đến ngày",
    show: "Xem báo cáo",
    csv: "Tải CSV",
    loading: "Đang tính…",
    failed: "Không lấy được báo cáo: {detail}",
    network: "Không kết nối được máy chủ. Hãy thử lại.",
    privacyHeading: "Bảo vệ quyền riêng tư",
    covers: "Số liệu của các đợt công bố: {releases}.",
    classRelease: "lớp {code}",
    noRelease: "Chưa có kỳ nào được công bố trong khoảng thời gian này.",
    tests: "khoảng {value} bài làm (95%: {low}–{high})",
    mean: "Điểm trung bình {value} (95%: {low}–{high})",
    atLeastLine: "Đạt từ mức {level} trở lên: {value} (95%: {low}–{high})",
    withheld: "{n} nhóm không hiện tỷ lệ vì có quá ít bài làm hoặc số liệu chủ yếu là nhiễu.",
    noGroups: "Chưa có nhóm nào đủ số liệu để hiện.",
    before: "Trước khóa học",
    after: "Sau khóa học",
    change: "Thay đổi",
    changeMean: "Điểm trung bình thay đổi {value} điểm (95%: {low} đến {high})",
    changeAtLeast: "Tỷ lệ đạt từ mức {level} thay đổi {value} điểm % (95%: {low} đến {high})",
    chartLabel: "Tỷ lệ theo mức của {group}; vạch đen là khoảng tin cậy 95%",
    cohortsHeading: "Lớp học",
    cohortsHelp:
      "Mỗi lớp có hai đường dẫn: học viên làm bài trước và sau khóa học. Bài làm vẫn ẩn danh, không hỏi họ tên.",
    cohortName: "Tên lớp",
    cohortDays: "Số ngày mở",
    cohortCreate: "Tạo lớp",
    cohortCreated: "Đã tạo lớp {name} (mã {code}).",
    cohortClose: "Đóng lớp",
    code: "Mã",
    status: "Trạng thái",
    links: "Đường dẫn",
    closes: "Đóng lúc",
    statuses: { open: "Đang mở", closed: "Đã đóng", released: "Đã có số liệu" },
    levelShort: "Mức {code}",
    frameworkLine:
      "Khung năng lực: {name} ({count} mức). Chỉ tính bài làm trên ngân hàng câu hỏi của khung này: {versions}.",
  },
  en: {
    title: "Digital competence reports for planners",
    brand: "Digital competence · Reports",
    otherLanguage: "Tiếng Việt",
    keyHeading: "Enter your report key",
    keyHelp:
      "An administrator gives planners this key. It is kept in this browser tab only and forgotten when the tab closes.",
    keyLabel: "Report key",
    keySubmit: "Open reports",
    keyWrong: "The key is wrong or is not a report key.",
    keyMissing: "Please enter your report key.",
    signOut: "Forget key",
    groupBy: "Group by",
    groups: {
      all: "Whole city",
      ward: "Ward or commune",
      age_group: "Age group",
      ward_age_group: "Ward × age group",
      cohort: "Training class (before/after)",
    },
    measure: "Measure",
    overall: "Overall score",
    area: "Area",
    competence: "Competence",
    atLeast: "Share at or above level",
    none: "None",
    from: "From",
    to: "To",
    show: "Show report",
    csv: "Download CSV",
    loading: "Computing…",
    failed: "Could not get the report: {detail}",
    network: "Cannot reach the server. Please try again.",
    privacyHeading: "Privacy protection",
    covers: "Figures from the releases: {releases}.",
    classRelease: "class {code}",
    noRelease: "No period in this window has been released yet.",
    tests: "about {value} tests (95%: {low}–{high})",
    mean: "Mean score {value} (95%: {low}–{high})",
    atLeastLine: "At or above level {level}: {value} (95%: {low}–{high})",
    withheld: "{n} groups show no shares: too few tests, or figures that are mostly noise.",
    noGroups: "No group has enough data to show yet.",
    before: "Before the course",
    after: "After the course",
    change: "Change",
    changeMean: "Mean score changed by {value} points (95%: {low} to {high})",
    changeAtLeast: "Share at or above level {level} changed by {value} points (95%: {low} to {high})",
    chartLabel: "Shares by level for {group}; black lines are 95% intervals",
    cohortsHeading: "Training classes",
    cohortsHelp:
      "Each class gets two links: learners take the test before and after the course. Tests stay anonymous: no names are asked.",
    cohortName: "Class name",
    cohortDays: "Days open",
    cohortCreate: "Create class",
    cohortCreated: "Created class {name} (code {code}).",
    cohortClose: "Close class",
    code: "Code",
    status: "Status",
    links: "Links",
    closes: "Closes",
    statuses: { open: "Open", closed: "Closed", released: "Figures released" },
    levelShort: "Level {code}",
    frameworkLine:
      "Framework: {name} ({count} levels). Only tests taken on this framework's item banks are counted: {versions}.",
  },
};

const root = document.getElementById("planner");
const langButton = document.getElementById("lang");
const state = {
  lang: initialLanguage(),
  key: sessionGet(KEY_STORE),
  framework: null,
  report: null,
  cohorts: [],
  notice: null,
  busy: false,
  form: { group_by: "ward", measure: "overall", at_least: "", from: "", to: "" },
};

function initialLanguage() {
  const asked = new URLSearchParams(window.location.search).get("lang");
  if (asked === "vi" || asked === "en") return asked;
  try {
    const stored = window.localStorage.getItem(LANG_STORE);
    return stored === "en" ? "en" : "vi";
  } catch {
    return "vi";
  }
}

function sessionGet(name) {
  try {
    return window.sessionStorage.getItem(name);
  } catch {
    return null;
  }
}

function sessionSet(name, value) {
  try {
    if (value === null) window.sessionStorage.removeItem(name);
    else window.sessionStorage.setItem(name, value);
  } catch {
    // The key then lives in this page only.
  }
}

function t(key, params = {}) {
  const text = TEXT[state.lang][key] ?? TEXT.vi[key];
  if (typeof text !== "string") return text;
  return text.replace(/\{(\w+)\}/g, (whole, name) => (name in params ? String(params[name]) : whole));
}

function h(tag, attrs = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else if (value === true) element.setAttribute(name, "");
    else element.setAttribute(name, String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

function svg(tag, attrs = {}, ...children) {
  const element = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) element.setAttribute(name, String(value));
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

const percent = (x) => `${(100 * x).toFixed(1)}%`;
const points = (x) => (100 * x).toFixed(1);
const number = (x) => Number(x).toLocaleString(state.lang === "vi" ? "vi-VN" : "en-GB", { maximumFractionDigits: 0 });

async function call(method, path, body) {
  const options = { method, headers: { Accept: "application/json", "X-API-Key": state.key || "" } };
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const response = await fetch(API + path, options);
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  return { status: response.status, data };
}

function query() {
  const params = new URLSearchParams({ group_by: state.form.group_by, measure: state.form.measure, language: state.lang });
  if (state.form.at_least) params.set("at_least", state.form.at_least);
  if (state.form.from) params.set("from", state.form.from);
  if (state.form.to) params.set("to", state.form.to);
  return params.toString();
}

// ---------------------------------------------------------------- actions --

async function signIn(event) {
  event.preventDefault();
  const key = event.currentTarget.elements.key.value.trim();
  if (!key) {
    state.notice = { error: true, text: t("keyMissing") };
    render();
    return;
  }
  state.key = key;
  const ok = await loadCohorts();
  if (!ok) {
    state.key = null;
    state.notice = { error: true, text: t("keyWrong") };
    render();
    return;
  }
  sessionSet(KEY_STORE, key);
  state.notice = null;
  await showReport();
}

function signOut() {
  state.key = null;
  state.report = null;
  sessionSet(KEY_STORE, null);
  render();
}

async function loadCohorts() {
  try {
    const reply = await call("GET", "/reports/cohorts");
    if (reply.status !== 200) return false;
    state.cohorts = reply.data || [];
    return true;
  } catch {
    return false;
  }
}

async function showReport(event) {
  if (event) {
    event.preventDefault();
    readForm(event.currentTarget.closest("form") || event.currentTarget);
  }
  state.busy = true;
  state.notice = { text: t("loading") };
  render();
  try {
    const reply = await call("GET", `/reports/levels?${query()}`);
    if (reply.status === 401 || reply.status === 403) {
      signOut();
      state.notice = { error: true, text: t("keyWrong") };
    } else if (reply.status !== 200) {
      state.notice = { error: true, text: t("failed", { detail: reply.data?.detail || reply.status }) };
    } else {
      state.report = reply.data;
      state.notice = null;
    }
  } catch {
    state.notice = { error: true, text: t("network") };
  }
  state.busy = false;
  render();
  document.getElementById("results")?.focus();
}

async function downloadCsv(event) {
  event.preventDefault();
  readForm(event.currentTarget.closest("form"));
  const response = await fetch(`${API}/reports/levels.csv?${query()}`, { headers: { "X-API-Key": state.key } });
  if (!response.ok) {
    state.notice = { error: true, text: t("failed", { detail: response.status }) };
    render();
    return;
  }
  const blob = await response.blob();
  const url = URL.createObjectURL(blob);
  const link = h("a", { href: url, download: `nangluc-${state.form.group_by}-${state.form.measure}.csv` });
  document.body.append(link);
  link.click();
  link.remove();
  window.setTimeout(() => URL.revokeObjectURL(url), 10000);
}

async function createCohort(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const name = form.elements.name.value.trim();
  const days = Number(form.elements.days.value) || undefined;
  const reply = await call("POST", "/reports/cohorts/new", days ? { name, days } : { name });
  if (reply.status === 201) {
    state.notice = { text: t("cohortCreated", { name: reply.data.name, code: reply.data.code }) };
    await loadCohorts();
  } else {
    state.notice = { error: true, text: t("failed", { detail: reply.data?.detail || reply.status }) };
  }
  render();
}

async function closeCohort(code) {
  await call("POST", `/reports/cohorts/${encodeURIComponent(code)}/close`);
  await loadCohorts();
  render();
}

function readForm(form) {
  for (const name of Object.keys(state.form)) {
    if (form.elements[name]) state.form[name] = form.elements[name].value;
  }
}

// ------------------------------------------------------------------ views --

function keyView() {
  return h(
    "section",
    { "aria-labelledby": "key-heading" },
    h("h1", { id: "key-heading" }, t("keyHeading")),
    h("p", {}, t("keyHelp")),
    noticeView(),
    h(
      "form",
      { class: "controls", onsubmit: signIn },
      h("div", {}, h("label", { for: "key" }, t("keyLabel")), h("input", { id: "key", name: "key", type: "password", autocomplete: "off" })),
      h("div", {}, h("button", { class: "button", type: "submit" }, t("keySubmit"))),
    ),
  );
}

function noticeView() {
  if (!state.notice) return null;
  return h("p", { class: `notice${state.notice.error ? " error" : ""}`, role: state.notice.error ? "alert" : "status" }, state.notice.text);
}

function select(name, label, options, value) {
  return h(
    "div",
    {},
    h("label", { for: name }, label),
    h("select", { id: name, name }, options.map(([v, text]) => h("option", { value: v, selected: v === value }, text))),
  );
}

function measureOptions() {
  const options = [["overall", t("overall")]];
  const framework = state.framework;
  if (!framework) return options;
  for (const area of framework.areas) {
    options.push([area.code, `${t("area")} ${area.code}: ${area.name[state.lang]}`]);
    for (const competence of framework.competences.filter((c) => c.area === area.code)) {
      options.push([competence.code, `  ${t("competence")} ${competence.code}: ${competence.name[state.lang]}`]);
    }
  }
  return options;
}

function controlsView() {
  const levels = (state.framework?.levels || []).map((lv) => [String(lv.level), `${lv.level} · ${lv.name[state.lang]}`]);
  return h(
    "form",
    { class: "controls", onsubmit: showReport },
    select("group_by", t("groupBy"), Object.entries(TEXT[state.lang].groups), state.form.group_by),
    select("measure", t("measure"), measureOptions(), state.form.measure),
    select("at_least", t("atLeast"), [["", t("none")], ...levels], state.form.at_least),
    h("div", {}, h("label", { for: "from" }, t("from")), h("input", { id: "from", name: "from", type: "date", value: state.form.from })),
    h("div", {}, h("label", { for: "to" }, t("to")), h("input", { id: "to", name: "to", type: "date", value: state.form.to })),
    h(
      "div",
      { class: "actions" },
      h("button", { class: "button", type: "submit", disabled: state.busy }, t("show")),
      h("button", { class: "button secondary", type: "button", onclick: downloadCsv }, t("csv")),
    ),
  );
}

/**
 * A colour class l1..l5 for the k-th of n levels: positions spread over the five
 * colours, so the lowest level is always the first colour and the top the last.
 */
function shade(k, n) {
  return `l${n < 2 ? 1 : 1 + Math.round((4 * k) / (n - 1))}`;
}

/** One bar per level of the report's framework, with 95% intervals, as an SVG drawing. */
function levelChart(label, levels, series) {
  // Drawn at the width it is shown at, so its text stays readable on a phone.
  const width = Math.max(300, Math.min(640, root.clientWidth - 8));
  const rowHeight = 26;
  const labelWidth = width < 480 ? 118 : 150;
  const plot = width - labelWidth - 56;
  const rows = levels.length * series.length;
  const chart = svg("svg", {
    class: "chart",
    viewBox: `0 0 ${width} ${rows * rowHeight + 8}`,
    role: "img",
    "aria-label": t("chartLabel", { group: label }),
  });
  let y = 4;
  levels.forEach((level, k) => {
    series.forEach(([name, figures, cls]) => {
      const share = figures.levels[k];
      const x = labelWidth;
      const text = series.length > 1 ? `${level.level} · ${name}` : `${level.level} · ${level.name}`;
      chart.append(svg("text", { x: 0, y: y + 16 }, text));
      chart.append(svg("rect", { x, y: y + 4, width: Math.max(share.value * plot, 0.5), height: rowHeight - 10, class: cls || shade(k, levels.length) }));
      const low = x + share.low * plot;
      const high = x + share.high * plot;
      const mid = y + rowHeight / 2 - 1;
      chart.append(svg("line", { x1: low, x2: high, y1: mid, y2: mid, class: "interval" }));
      chart.append(svg("line", { x1: low, x2: low, y1: mid - 5, y2: mid + 5, class: "interval" }));
      chart.append(svg("line", { x1: high, x2: high, y1: mid - 5, y2: mid + 5, class: "interval" }));
      chart.append(svg("text", { x: x + plot + 8, y: y + 16 }, percent(share.value)));
      y += rowHeight;
    });
  });
  return chart;
}

function figuresText(figures) {
  const lines = [];
  if (figures.mean) lines.push(t("mean", { value: figures.mean.value.toFixed(1), low: figures.mean.low.toFixed(1), high: figures.mean.high.toFixed(1) }));
  if (figures.at_least) {
    lines.push(t("atLeastLine", { level: figures.at_least.level, value: percent(figures.at_least.value), low: percent(figures.at_least.low), high: percent(figures.at_least.high) }));
  }
  return lines.map((line) => h("p", { class: "meta" }, line));
}

function testsText(figures) {
  return t("tests", { value: number(figures.tests.value), low: number(figures.tests.low), high: number(figures.tests.high) });
}

function groupView(group, levels) {
  return h(
    "article",
    { class: "group" },
    h("h3", {}, group.label),
    h("p", { class: "meta" }, testsText(group)),
    levelChart(group.label, levels, [["", group, null]]),
    figuresText(group),
  );
}

function cohortView(group, levels) {
  const shown = group.before.shown && group.after.shown;
  const change = group.change;
  const lines = [];
  if (change.shown && change.mean) {
    lines.push(t("changeMean", { value: signed(change.mean.value), low: signed(change.mean.low), high: signed(change.mean.high) }));
  }
  if (change.shown && change.at_least) {
    lines.push(
      t("changeAtLeast", {
        level: change.at_least.level,
        value: signed(100 * change.at_least.value),
        low: signed(100 * change.at_least.low),
        high: signed(100 * change.at_least.high),
      }),
    );
  }
  return h(
    "article",
    { class: "group cohort" },
    h("h3", {}, `${group.label} (${group.cohort})`),
    h("p", { class: "meta" }, `${t("before")}: ${testsText(group.before)} · ${t("after")}: ${testsText(group.after)}`),
    shown ? levelChart(group.label, levels, [[t("before"), group.before, "before"], [t("after"), group.after, "after"]]) : h("p", { class: "meta" }, t("noGroups")),
    lines.map((line) => h("p", { class: "meta change" }, `${t("change")}: ${line}`)),
  );
}

function releaseName(key) {
  const [kind, name] = key.split(":");
  return kind === "cohort" ? t("classRelease", { code: name }) : name;
}

function signed(x) {
  const value = Number(x).toFixed(1);
  return x > 0 ? `+${value}` : value;
}

function reportView() {
  const report = state.report;
  if (!report) return null;
  const levels = report.levels;
  const cohorts = report.group_by === "cohort";
  const shown = report.groups.filter((g) => (cohorts ? g.before.shown || g.after.shown : g.shown));
  const hidden = report.groups.length - shown.length;
  return h(
    "section",
    { id: "results", tabindex: "-1", "aria-labelledby": "results-heading" },
    h("h2", { id: "results-heading" }, `${report.measure.name} · ${TEXT[state.lang].groups[report.group_by]}`),
    report.framework
      ? h(
          "p",
          { class: "meta framework" },
          t("frameworkLine", {
            name: report.framework.name || report.framework.bank_version,
            count: levels.length,
            versions: report.framework.bank_versions.join(", "),
          }),
        )
      : null,
    h(
      "div",
      { class: "notice privacy" },
      h("strong", {}, `${t("privacyHeading")} (ε = ${report.privacy.epsilon}). `),
      report.privacy.protects,
      " ",
      report.window.releases.length ? t("covers", { releases: report.window.releases.map(releaseName).join(", ") }) : t("noRelease"),
    ),
    h("ul", { class: "legend" }, levels.map((lv, k) => h("li", {}, h("span", { class: `swatch ${shade(k, levels.length)}`, "aria-hidden": "true" }), `${lv.level} · ${lv.name} (${lv.lower}–${lv.upper})`))),
    shown.length ? shown.map((g) => (cohorts ? cohortView(g, levels) : groupView(g, levels))) : h("p", {}, t("noGroups")),
    hidden ? h("p", { class: "meta" }, t("withheld", { n: hidden })) : null,
    h("ul", { class: "notes" }, report.notes.map((note) => h("li", {}, note))),
  );
}

function cohortsView() {
  const origin = window.location.origin;
  return h(
    "section",
    { "aria-labelledby": "cohorts-heading" },
    h("h2", { id: "cohorts-heading" }, t("cohortsHeading")),
    h("p", {}, t("cohortsHelp")),
    h(
      "form",
      { class: "controls", onsubmit: createCohort },
      h("div", {}, h("label", { for: "cohort-name" }, t("cohortName")), h("input", { id: "cohort-name", name: "name", required: true, maxlength: "200" })),
      h("div", {}, h("label", { for: "cohort-days" }, t("cohortDays")), h("input", { id: "cohort-days", name: "days", type: "number", min: "1", max: "3660", value: "30" })),
      h("div", {}, h("button", { class: "button", type: "submit" }, t("cohortCreate"))),
    ),
    state.cohorts.length
      ? h(
          "div",
          { class: "table-wrap" },
          h(
          "table",
          { class: "cohorts" },
          h("thead", {}, h("tr", {}, [t("cohortName"), t("code"), t("status"), t("closes"), t("links"), ""].map((x) => h("th", { scope: "col" }, x)))),
          h(
            "tbody",
            {},
            state.cohorts.map((c) =>
              h(
                "tr",
                {},
                h("td", {}, c.name),
                h("td", {}, h("code", {}, c.code)),
                h("td", {}, TEXT[state.lang].statuses[c.status] || c.status),
                h("td", {}, new Date(c.closes).toLocaleString(state.lang === "vi" ? "vi-VN" : "en-GB")),
                h("td", {}, h("div", {}, `${t("before")}: `, h("code", {}, origin + c.links.before)), h("div", {}, `${t("after")}: `, h("code", {}, origin + c.links.after))),
                h("td", {}, c.status === "open" ? h("button", { class: "button secondary", type: "button", onclick: () => closeCohort(c.code) }, t("cohortClose")) : null),
              ),
            ),
          ),
          ),
        )
      : null,
  );
}

function render() {
  document.documentElement.lang = state.lang;
  document.title = t("title");
  document.getElementById("brand").textContent = t("brand");
  langButton.textContent = t("otherLanguage");
  langButton.lang = state.lang === "vi" ? "en" : "vi";
  if (!state.key) {
    root.replaceChildren(keyView());
    return;
  }
  const parts = [
    h("div", { class: "actions" }, h("h1", {}, t("title")), h("button", { class: "link", type: "button", onclick: signOut }, t("signOut"))),
    controlsView(),
    noticeView(),
    reportView(),
    cohortsView(),
  ];
  root.replaceChildren(...parts.filter((part) => part !== null));
}

async function loadFramework() {
  try {
    const response = await fetch(`${API}/framework`);
    if (response.ok) state.framework = await response.json();
  } catch {
    state.framework = null;
  }
}

langButton.addEventListener("click", async () => {
  state.lang = state.lang === "vi" ? "en" : "vi";
  try {
    window.localStorage.setItem(LANG_STORE, state.lang);
  } catch {
    // the choice lasts for this page only
  }
  if (state.key && state.report) await showReport();
  else render();
});

await loadFramework();
if (state.key && (await loadCohorts())) {
  await showReport();
} else {
  state.key = null;
  render();
}
