// MathJax 3.2.2 (Apache 2.0, book/src/mathjax/LICENSE) is served from the book itself, so every
// formula renders without a network: mdBook's own MathJax support loads it from a CDN.
// Chapters write \\( \\) inline and \\[ \\] displayed, which Markdown turns into \( \) and \[ \].
window.MathJax = {
  tex: {
    inlineMath: [["\\(", "\\)"]],
    displayMath: [["\\[", "\\]"]],
  },
};
