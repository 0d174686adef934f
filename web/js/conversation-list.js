// The sidebar: the user's conversations, newest first; a drawer on a phone.

import { t } from "./i18n.js";

export class ConversationList {
  constructor({ sidebar, list, menuToggle, chatArea }, { onOpen }) {
    this.sidebar = sidebar;
    this.list = list;
    this.onOpen = onOpen;
    this.items = [];
    this.currentId = null;
    menuToggle.addEventListener("click", (event) => {
      event.stopPropagation();
      sidebar.classList.toggle("open");
    });
    // On a phone the list is a drawer: a tap on the chat closes it.
    chatArea.addEventListener("click", () => this.close());
  }

  close() {
    this.sidebar.classList.remove("open");
  }

  // The server's title of a conversation in the list (null: not listed).
  titleOf(id) {
    return this.items.find((item) => item.id === id)?.title ?? null;
  }

  // Again with the same items (the language changed).
  refresh() {
    this.render(this.items, this.currentId);
  }

  render(conversations, currentId) {
    this.items = conversations;
    this.currentId = currentId;
    this.list.replaceChildren(...conversations.map((item) => {
      const li = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      button.className = "conversation-link";
      button.dataset.conversationId = item.id;
      button.textContent = item.title || t("chat.newChat");
      button.title = item.title || "";
      if (item.id === currentId) button.setAttribute("aria-current", "true");
      button.addEventListener("click", () => {
        this.close();
        this.onOpen(item.id);
      });
      li.appendChild(button);
      return li;
    }));
  }

  markCurrent(currentId) {
    this.currentId = currentId;
    for (const button of this.list.querySelectorAll("button")) {
      button.toggleAttribute("aria-current", button.dataset.conversationId === currentId);
    }
  }
}
