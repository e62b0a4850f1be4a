// The agent console's sign-in form: posts the credentials with the form's CSRF token.
const form = document.getElementById("sign-in");
const error = document.getElementById("sign-in-error");
const csrf = document.querySelector('meta[name="csrf-token"]').content;

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const button = form.querySelector("button");
  button.disabled = true;
  error.hidden = true;
  try {
    const response = await fetch("/agent/sign-in", {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: JSON.stringify({ username: form.username.value, password: form.password.value }),
      credentials: "same-origin",
    });
    if (response.ok) {
      window.location.replace("/agent");
      return;
    }
    const body = await response.json().catch(() => ({}));
    error.textContent =
      response.status === 403 ? "This form expired: reload the page." : body.error || "Sign-in failed.";
  } catch {
    error.textContent = "The console is not reachable. Try again in a moment.";
  }
  error.hidden = false;
  form.password.value = "";
  form.password.focus();
  button.disabled = false;
});
