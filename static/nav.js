// Phones: the navigation folds behind a "Menu" button (CSS shows the button under 768 px).
// Without JavaScript the links stay visible and wrap.
document.addEventListener("DOMContentLoaded", () => {
  const button = document.querySelector(".nav-toggle");
  const nav = button && button.closest("nav");
  if (!nav) return;
  button.hidden = false;
  nav.classList.add("foldable");
  button.addEventListener("click", () => {
    const open = nav.classList.toggle("open");
    button.setAttribute("aria-expanded", String(open));
  });
});
