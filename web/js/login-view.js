// The login form: asks for an API key and hands it to `onLogin`. Its error is a string or a
// function that makes it (shown again in the new language after a switch).

export class LoginView {
  constructor({ view, form, apiKey, error }, { onLogin }) {
    this.view = view;
    this.apiKey = apiKey;
    this.error = error;
    this.message = "";
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      onLogin(apiKey.value.trim());
    });
  }

  get visible() {
    return !this.view.hidden;
  }

  show(message = "") {
    this.view.hidden = false;
    this.showError(message);
    this.apiKey.focus();
  }

  hide() {
    this.view.hidden = true;
  }

  showError(message) {
    this.message = message;
    this.refresh();
  }

  refresh() {
    this.error.textContent = typeof this.message === "function" ? this.message() : this.message;
  }

  clearKey() {
    this.apiKey.value = "";
  }
}
