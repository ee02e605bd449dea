# `make demo` and `make test` work on a fresh machine: they create the venv,
# install the package and the system libraries it needs.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.PHONY: install demo test test-deps bench-ingest bench-query bench-resources bench-compare clean system-deps

system-deps:
	@if ! ldconfig -p 2>/dev/null | grep -q 'libmagic.so.1'; then \
	  echo "installing libmagic1 (python-magic needs it)"; \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq libmagic1 >/dev/null; \
	  else echo "libmagic1 is missing: run 'sudo apt-get install libmagic1'" >&2; exit 1; fi; \
	fi

# The IMAP tests start their own Dovecot on 127.0.0.1; without root they skip, saying why.
test-deps: system-deps
	@if ! command -v dovecot >/dev/null 2>&1 && [ ! -x /usr/sbin/dovecot ]; then \
	  if [ "$$(id -u)" = 0 ]; then echo "installing dovecot-imapd (the IMAP tests' server)"; \
	    export DEBIAN_FRONTEND=noninteractive; \
	    apt-get install -y -qq dovecot-imapd >/dev/null 2>&1 || \
	    { apt-get update -qq && apt-get install -y -qq dovecot-imapd >/dev/null; }; \
	  else echo "dovecot-imapd is missing and we are not root: the IMAP tests will be skipped" >&2; fi; \
	fi
	@if ! command -v groff >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	  echo "installing groff-base (the manual page test renders mailindex(1))"; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq groff-base >/dev/null 2>&1 || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq groff-base >/dev/null; }; \
	fi

$(STAMP): pyproject.toml plugins/imap/pyproject.toml | system-deps
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -e '.[test]' -e plugins/imap --config-settings editable_mode=compat
	@mkdir -p $(VENV)/share/man/man1 $(VENV)/share/bash-completion/completions
	$(VENV)/bin/mailindex man > $(VENV)/share/man/man1/mailindex.1
	$(VENV)/bin/mailindex completion bash > $(VENV)/share/bash-completion/completions/mailindex
	@touch $(STAMP)

install: $(STAMP)

demo: install
	@rm -rf demo-index
	$(VENV)/bin/mailindex --index demo-index index fixtures/mail/maildir --source personal --owner me@example.com
	$(VENV)/bin/mailindex --index demo-index index fixtures/mail/archive.mbox --source archive
	$(VENV)/bin/mailindex --index demo-index index fixtures/mail/eml --source exports
	$(VENV)/bin/mailindex --index demo-index index fixtures/mail/takeout.mbox --source gmail
	@echo; echo '$$ mailindex sources   (every folder is indexed, trash and junk too; --sync-all-folders 0 leaves them out)'
	@$(VENV)/bin/mailindex --index demo-index sources
	@echo; echo '$$ mailindex accounts'
	@$(VENV)/bin/mailindex --index demo-index accounts
	@echo; echo '$$ mailindex search --from alice@example.com --limit 5'
	@$(VENV)/bin/mailindex --index demo-index search --from alice@example.com --limit 5
	@echo; echo '$$ mailindex search --email example.org --count'
	@$(VENV)/bin/mailindex --index demo-index search --email example.org --count
	@echo; echo "\$$ mailindex search 'invoice* OR \"meeting notes\"'   (the query language: words, phrases, prefixes, fields)"
	@$(VENV)/bin/mailindex --index demo-index search 'invoice* OR "meeting notes"'
	@echo; echo '$$ mailindex search --file-name "*.pdf" --file-size-max 10000'
	@$(VENV)/bin/mailindex --index demo-index search --file-name '*.pdf' --file-size-max 10000
	@echo; echo '$$ mailindex search --subject "/^Re: /" --folder "\\Sent"'
	@$(VENV)/bin/mailindex --index demo-index search --subject '/^Re: /' --folder '\Sent'
	@echo; echo '$$ mailindex contacts --limit 5'
	@$(VENV)/bin/mailindex --index demo-index contacts --limit 5
	@echo; echo '$$ mailindex thread <a message that has replies>'
	@$(VENV)/bin/mailindex --index demo-index thread \
	  "$$($(VENV)/bin/mailindex --index demo-index search --include-thread-size --json | $(PY) -c 'import json,sys; print(max(json.load(sys.stdin), key=lambda m: m["thread_size"])["message_id"])')"
	@echo; echo '$$ mailindex show <first message> --include-body --json  (first lines)'
	@$(VENV)/bin/mailindex --index demo-index show \
	  "$$($(VENV)/bin/mailindex --index demo-index search --limit 1 --json | $(PY) -c 'import json,sys; print(json.load(sys.stdin)[0]["message_id"])')" \
	  --include-body --json | head -40

test: install test-deps
	$(PY) -m mypy
	$(PY) -m pytest -q -n 2

bench-ingest: install
	$(PY) -m benchmarks.ingest

bench-query: install
	$(PY) -m benchmarks.query

bench-resources: install
	$(PY) -m benchmarks.resources

bench-compare: install
	$(PY) -m pip install -q --disable-pip-version-check -e '.[bench]'
	$(PY) -m benchmarks.compare

clean:
	rm -rf demo-index .pytest_cache .hypothesis
