// The demo store's own code (not the widget's): a pretend sign-in as one of the demo
// customers. A real store signs the customer token on its server for the signed-in shopper
// and hands it to the widget in exactly these two ways.
(() => {
  const KEY = "demo-store:customer";
  const widget = document.querySelector('script[src$="/widget/giftbot-chat.js"]');
  const form = document.getElementById("sign-in");
  const signedIn = document.getElementById("signed-in");
  const error = document.getElementById("sign-in-error");
  // Not in demo mode: the page has no sign-in form and the widget stays signed out.
  if (!form) return;

  function stored() {
    try {
      const customer = JSON.parse(localStorage.getItem(KEY));
      const claims = JSON.parse(atob(customer.customer_token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/")));
      return claims.exp * 1000 > Date.now() ? customer : null;
    } catch {
      return null;
    }
  }

  function show(customer) {
    form.hidden = Boolean(customer);
    signedIn.hidden = !customer;
    document.getElementById("customer-name").textContent = customer ? customer.name : "";
  }

  function withWidget(call) {
    if (window.GiftbotChat) call(window.GiftbotChat);
    else window.addEventListener("giftbot:ready", (event) => call(event.detail), { once: true });
  }

  // 1. At page load, before the widget starts: the token as a data- attribute of its tag.
  const customer = stored();
  widget.dataset.customerToken = customer ? customer.customer_token : "";
  show(customer);

  // 2. Later: through window.GiftbotChat.
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    const response = await fetch("/demo/sign-in", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ email: form.elements.email.value }),
    }).catch(() => null);
    const body = response ? await response.json().catch(() => ({})) : {};
    if (!response || !response.ok) {
      error.textContent = body.error || "Could not sign in. Is the demo server running?";
      return;
    }
    localStorage.setItem(KEY, JSON.stringify(body));
    show(body);
    withWidget((chat) => chat.setCustomerToken(body.customer_token));
    document.getElementById("sign-out").focus();
  });

  document.getElementById("sign-out").addEventListener("click", () => {
    localStorage.removeItem(KEY);
    show(null);
    withWidget((chat) => chat.setCustomerToken(null));
    form.elements.email.focus();
  });
})();
