// The login form: asks for an API key and hands it to `onLogin`.

export class LoginView {
  constructor({ view, form, apiKey, error }, { onLogin }) {
    this.view = view;
    this.apiKey = apiKey;
    this.error = error;
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
    this.error.textContent = message;
    this.apiKey.focus();
  }

  hide() {
    this.view.hidden = true;
  }

  showError(message) {
    this.error.textContent = message;
  }

  clearKey() {
    this.apiKey.value = "";
  }
}
