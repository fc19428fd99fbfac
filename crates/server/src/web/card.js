// Stripe's own card fields (Stripe.js) in the sign-up and pay forms. The card number goes from
// this page straight to Stripe, which saves it for the setup the server started; the form then
// posts only the setup's id, and the server asks Stripe what was saved.
(() => {
  const form = document.querySelector("form[data-stripe-key]");
  if (!form) return;
  const errors = document.getElementById("card-errors");
  const button = form.querySelector("button[type=submit]");
  if (typeof Stripe === "undefined") {
    errors.textContent = "The card form could not load. Check your connection and reload the page.";
    button.disabled = true;
    return;
  }
  const stripe = Stripe(form.dataset.stripeKey);
  const card = stripe.elements().create("card");
  card.mount("#card-element");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    button.disabled = true;
    errors.textContent = "";
    const { error } = await stripe.confirmCardSetup(form.dataset.clientSecret, { payment_method: { card } });
    if (error) {
      errors.textContent = error.message;
      button.disabled = false;
      return;
    }
    form.submit();
  });
})();
