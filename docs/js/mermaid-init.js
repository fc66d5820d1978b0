// Draw every ```mermaid block of the docs (pymdownx.superfences renders them as <div class="mermaid">).
mermaid.initialize({ startOnLoad: true });
