// The sidebar: the user's conversations, newest first; a drawer on a phone.

export class ConversationList {
  constructor({ sidebar, list, menuToggle, chatArea }, { onOpen }) {
    this.sidebar = sidebar;
    this.list = list;
    this.onOpen = onOpen;
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

  render(conversations, currentId) {
    this.list.replaceChildren(...conversations.map((item) => {
      const li = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      button.className = "conversation-link";
      button.dataset.conversationId = item.id;
      button.textContent = item.title || "New chat";
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
    for (const button of this.list.querySelectorAll("button")) {
      button.toggleAttribute("aria-current", button.dataset.conversationId === currentId);
    }
  }
}
