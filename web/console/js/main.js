// Entry point of the operator console: one ConsoleApp for the page.
import { ConsoleApp } from "./console-app.js";

new ConsoleApp().start();
