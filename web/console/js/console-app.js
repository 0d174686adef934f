// The console: sign-in with the admin token (the gateway answers with an HttpOnly cookie, which
// the page never reads), one section per tab (#keys, #usage, #upstreams, #controls), log-out, and
// the language switch. A 401 from any call means the session ended: back to the login form.

import { ApiError, api, explainError, whenUnauthorized } from "./api.js";
import { ControlsView } from "./controls-view.js";
import { applyStatic, language, onLanguageChange, t } from "./i18n.js";
import { KeysView } from "./keys-view.js";
import { LanguageSwitch } from "../../js/language-switch.js";
import { UpstreamsView } from "./upstreams-view.js";
import { UsageView } from "./usage-view.js";

const TABS = ["keys", "usage", "upstreams", "controls"];

export class ConsoleApp {
  constructor() {
    this.loginView = document.getElementById("login-view");
    this.loginForm = document.getElementById("login-form");
    this.token = document.getElementById("admin-token");
    this.loginButton = document.getElementById("login-button");
    this.loginError = document.getElementById("login-error");
    this.loginMessage = null;
    this.appView = document.getElementById("app-view");
    this.views = {
      keys: new KeysView(document.getElementById("keys-view")),
      usage: new UsageView(document.getElementById("usage-view")),
      upstreams: new UpstreamsView(document.getElementById("upstreams-view")),
      controls: new ControlsView(document.getElementById("controls-view")),
    };
    this.tab = null;
  }

  async start() {
    applyStatic();
    new LanguageSwitch(document.querySelectorAll(".language-switch"), language);
    onLanguageChange(() => this.render());
    whenUnauthorized(() => this.signedOut(() => t("error.unauthorized")));
    this.loginForm.addEventListener("submit", (event) => {
      event.preventDefault();
      this.login(this.token.value.trim());
    });
    document.getElementById("logout").addEventListener("click", () => this.logout());
    window.addEventListener("hashchange", () => this.signedIn && this.select(tabOf(location.hash)));
    try {
      await api.session();
      this.showApp();
    } catch {
      this.showLogin(); // 401: not signed in (or no console session API: the login says so)
    }
    document.body.dataset.ready = "true";
  }

  get signedIn() {
    return !this.appView.hidden;
  }

  async login(token) {
    if (!token) {
      this.showLoginError(() => t("login.enterToken"));
      return;
    }
    this.loginButton.disabled = true;
    try {
      await api.login(token);
      this.token.value = "";
      this.showLoginError(null);
      this.showApp();
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) this.showLoginError(() => t("login.invalidToken"));
      else if (error instanceof ApiError && (error.status === 404 || error.status === 405)) {
        this.showLoginError(() => t("login.unavailable", { status: error.status }));
      } else this.showLoginError(() => explainError(error));
      this.token.select();
    } finally {
      this.loginButton.disabled = false;
    }
  }

  async logout() {
    try {
      await api.logout();
    } catch {
      // the cookie is cleared by the gateway; if it could not be reached the session ends on its own
    }
    this.signedOut(null);
  }

  signedOut(message) {
    for (const view of Object.values(this.views)) view.reset();
    this.tab = null;
    this.showLogin(message);
  }

  showLogin(message = null) {
    for (const view of Object.values(this.views)) view.hide();
    this.appView.hidden = true;
    this.loginView.hidden = false;
    this.showLoginError(message);
    this.token.focus();
  }

  showLoginError(make) {
    this.loginMessage = make;
    this.loginError.textContent = make ? make() : "";
  }

  showApp() {
    this.loginView.hidden = true;
    this.appView.hidden = false;
    this.select(tabOf(location.hash));
  }

  select(tab) {
    this.tab = tab;
    for (const link of document.querySelectorAll("[data-tab]")) {
      if (link.dataset.tab === tab) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
    }
    for (const [name, view] of Object.entries(this.views)) if (name !== tab) view.hide();
    return this.views[tab].show();
  }

  render() {
    if (this.loginMessage) this.loginError.textContent = this.loginMessage();
    for (const view of Object.values(this.views)) view.render();
  }
}

function tabOf(hash) {
  const tab = String(hash || "").replace(/^#/, "");
  return TABS.includes(tab) ? tab : "keys";
}
