# fabgrid — one Makefile for the daemons, the simulator, the tests and the benchmarks.
#   make            build everything (warnings are errors; WERROR=0 to relax)
#   make check      install missing Debian packages, build, run unit + integration tests
#   make bench      run the benchmarks and print their figures
#   make demo       run a simulated workshop end to end
#   make install    DESTDIR=... PREFIX=/usr/local
#   SANITIZE=address,undefined  builds into build-san/ with the sanitizers;  V=1 shows commands

PREFIX   ?= /usr/local
DESTDIR  ?=
BINDIR   := $(PREFIX)/bin
DATADIR  := $(PREFIX)/share/fabgrid
CC       ?= cc
WERROR   ?= 1
SANITIZE ?=
PKGS     := libmodbus libmosquitto libcjson libcurl zlib sqlite3
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
# Each binary links only the libraries it calls (--as-needed drops any it does not). libcurl, zlib and
# SQLite are linked by none: col_writer and col_spool load them at run time (common/fg_dl) when the
# config has an "influx" section, so their headers are needed at compile time only.
pkg_libs = $(shell pkg-config --libs $(1) 2>/dev/null)
COL_LIBS := $(call pkg_libs,libmodbus libmosquitto libcjson)
SIM_LIBS := $(call pkg_libs,libmodbus libcjson)
BAL_LIBS := $(call pkg_libs,libmosquitto libcjson)

ifeq ($(SANITIZE),)
BUILD    ?= build
SANFLAGS :=
else
BUILD    ?= build-san
SANFLAGS := -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
endif

WARN     := -Wall -Wextra -Wshadow -Wformat=2 -Wmissing-prototypes -Wstrict-prototypes
ifeq ($(WERROR),1)
WARN     += -Werror
endif
CPPFLAGS += -D_GNU_SOURCE -DFG_PROFILE_DIR='"$(DATADIR)/profiles"' -Icommon -Icollector -Isim -Ibalancer
CFLAGS   ?= -O2 -g
ALL_CFLAGS := -std=c11 $(WARN) $(CFLAGS) $(SANFLAGS) $(PKG_CFLAGS) -MMD -MP
LDLIBS   := -lpthread -lm -ldl
LDFLAGS  += -Wl,--as-needed $(SANFLAGS)

ifeq ($(V),1)
Q :=
else
Q := @
endif

COMMON_SRC := $(wildcard common/*.c)
COL_SRC    := $(filter-out collector/main.c,$(wildcard collector/*.c))
SIM_SRC    := $(filter-out sim/sim_main.c,$(wildcard sim/*.c))
BAL_SRC    := $(filter-out balancer/main.c,$(wildcard balancer/*.c))
UNIT_SRC   := $(wildcard tests/unit/test_*.c)
BENCH_SRC  := $(wildcard bench/*.c)

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))
COMMON_OBJ := $(call obj,$(COMMON_SRC))
COL_OBJ    := $(call obj,$(COL_SRC))
SIM_OBJ    := $(call obj,$(SIM_SRC))
BAL_OBJ    := $(call obj,$(BAL_SRC))
BINS       := $(BUILD)/bin/fabgrid-collector $(BUILD)/bin/fabgrid-sim $(BUILD)/bin/fabgrid-balancer
UNIT_BINS  := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))
BENCH_BINS := $(patsubst bench/%.c,$(BUILD)/bench/%,$(BENCH_SRC))

.PHONY: all check deps test bench demo install clean
all: $(BINS) $(UNIT_BINS) $(BENCH_BINS)

deps:
	$(Q)./deploy/install-deps.sh

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CPPFLAGS) $(ALL_CFLAGS) -c $< -o $@

$(BUILD)/lib/libfg.a: $(COMMON_OBJ)
	@mkdir -p $(dir $@)
	$(Q)rm -f $@ && ar rcs $@ $^

$(BUILD)/lib/libcol.a: $(COL_OBJ)
	@mkdir -p $(dir $@)
	$(Q)rm -f $@ && ar rcs $@ $^

$(BUILD)/lib/libsim.a: $(SIM_OBJ)
	@mkdir -p $(dir $@)
	$(Q)rm -f $@ && ar rcs $@ $^

$(BUILD)/lib/libbal.a: $(BAL_OBJ)
	@mkdir -p $(dir $@)
	$(Q)rm -f $@ && ar rcs $@ $^

LIBS := $(BUILD)/lib/libsim.a $(BUILD)/lib/libbal.a $(BUILD)/lib/libcol.a $(BUILD)/lib/libfg.a

$(BUILD)/bin/fabgrid-collector: $(call obj,collector/main.c) $(LIBS)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(COL_LIBS) $(LDLIBS)

$(BUILD)/bin/fabgrid-balancer: $(call obj,balancer/main.c) $(LIBS)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(BAL_LIBS) $(LDLIBS)

$(BUILD)/bin/fabgrid-sim: $(call obj,sim/sim_main.c) $(LIBS)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(SIM_LIBS) $(LDLIBS)

$(BUILD)/tests/%: $(BUILD)/obj/tests/unit/%.o $(LIBS)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(COL_LIBS) $(LDLIBS) -lcmocka

$(BUILD)/bench/%: $(BUILD)/obj/bench/%.o $(LIBS)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(COL_LIBS) $(LDLIBS)

# make check: dependencies first (a fresh machine has none), then build with -Werror, then every test.
check: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)BUILD=$(BUILD) ./tests/run.sh

test: all
	$(Q)BUILD=$(BUILD) ./tests/run.sh

bench: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)BUILD=$(BUILD) ./bench/run.sh

demo: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)BUILD=$(BUILD) ./deploy/demo.sh

# make install: binaries to $(PREFIX)/bin; profiles, dashboards, example configs and the Mosquitto and
# InfluxDB setup files to $(PREFIX)/share/fabgrid; systemd units (with the paths filled in) and the
# sysusers.d file to $(PREFIX)/lib (systemd reads /usr/lib and /usr/local/lib); the site config lives
# in $(SYSCONFDIR)/fabgrid (/etc with PREFIX=/usr, else $(PREFIX)/etc), of which only
# site.json.example is installed. Build and install with the same PREFIX: it is compiled in.
SYSCONFDIR  ?= $(if $(filter /usr,$(PREFIX)),/etc,$(PREFIX)/etc)
UNITDIR     ?= $(PREFIX)/lib/systemd/system
SYSUSERSDIR ?= $(PREFIX)/lib/sysusers.d
UNITS       := $(wildcard deploy/systemd/*.service)
DEPLOY_DATA := deploy/mosquitto/fabgrid.conf deploy/mosquitto/fabgrid.acl deploy/influxdb/schema.iql \
               deploy/influxdb/influxdb.conf deploy/influxdb/README.md
DASHBOARD_FILES := $(shell find dashboards -type f 2>/dev/null | sort)

install: $(BINS)
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(DATADIR)/profiles $(DESTDIR)$(DATADIR)/examples \
		$(DESTDIR)$(DATADIR)/deploy/mosquitto $(DESTDIR)$(DATADIR)/deploy/influxdb \
		$(DESTDIR)$(SYSCONFDIR)/fabgrid $(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSUSERSDIR)
	install -m 755 $(BINS) $(DESTDIR)$(BINDIR)/
	install -m 644 config/profiles/*.json $(DESTDIR)$(DATADIR)/profiles/
	install -m 644 config/*.json $(DESTDIR)$(DATADIR)/examples/
	install -m 644 config/example.json $(DESTDIR)$(SYSCONFDIR)/fabgrid/site.json.example
	for u in $(UNITS); do \
		sed -e 's|@BINDIR@|$(BINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' -e 's|@DATADIR@|$(DATADIR)|g' \
			$$u >$(DESTDIR)$(UNITDIR)/$${u##*/} && chmod 644 $(DESTDIR)$(UNITDIR)/$${u##*/} || exit 1; \
	done
	install -m 644 deploy/systemd/fabgrid.sysusers $(DESTDIR)$(SYSUSERSDIR)/fabgrid.conf
	install -m 755 deploy/mosquitto-users.sh deploy/influxdb-setup.sh $(DESTDIR)$(DATADIR)/deploy/
	for f in $(DEPLOY_DATA); do install -m 644 $$f $(DESTDIR)$(DATADIR)/$$f || exit 1; done
	for f in $(DASHBOARD_FILES); do install -D -m 644 $$f $(DESTDIR)$(DATADIR)/$$f || exit 1; done

clean:
	rm -rf build build-san

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
.SECONDARY:
