// Entry point: one ChatUI for the page.
import { ChatUI } from "./chat-ui.js";

const ui = new ChatUI();
ui.start();
