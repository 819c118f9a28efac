# packaging.cmake: what `cmake --install` puts where besides the programs (each directory
# installs its own binaries; worker/ installs the plugin ABI header), and the Debian package
# built by CPack (`cpack -G DEB` in the build directory). Included at the end of the root
# CMakeLists.txt.
#
# Layout under the prefix (/usr for the .deb, /usr/local by default):
#   bin/hookmq-*                               the programs
#   include/hookmq/handler.h                   the handler plugin ABI
#   lib/hookmq/examples/hello.so               the example plugin (source in the docs)
#   lib/systemd/system/hookmq-*.service        systemd units (ExecStart points at bin/ here)
#   share/man/man1/hookmq-*.1, man5/hookmq.conf.5
#   share/hookmq/samples/<scheme>/<name>.json  hookmq-send's samples
#   share/hookmq/nginx-hookmq.conf, grafana/, prometheus/
#   share/doc/hookmq/                          README, docs/*.md, examples/
#   etc/hookmq/hookmq.conf.example             /etc/hookmq for the prefix /usr
#
# The units and the example config are placed at install time, because their location (and
# the ExecStart paths) depend on the prefix the install runs with (cmake --install --prefix,
# or CPack's /usr), not on the one configured.

set(HQ_SHAREDIR ${CMAKE_INSTALL_DATADIR}/hookmq)

# ---- man pages ---------------------------------------------------------------------------
file(GLOB HQ_MAN1 ${PROJECT_SOURCE_DIR}/docs/man/*.1)
install(FILES ${HQ_MAN1} DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
install(FILES ${PROJECT_SOURCE_DIR}/docs/man/hookmq.conf.5 DESTINATION ${CMAKE_INSTALL_MANDIR}/man5)

# ---- data: samples, proxy and monitoring configs ------------------------------------------
install(DIRECTORY ${PROJECT_SOURCE_DIR}/conf/samples/ DESTINATION ${HQ_SHAREDIR}/samples)
foreach(f nginx-hookmq.conf grafana/hookmq-dashboard.json prometheus/hookmq-alerts.yml)
    if(EXISTS ${PROJECT_SOURCE_DIR}/conf/${f})
        get_filename_component(d ${f} DIRECTORY)
        install(FILES ${PROJECT_SOURCE_DIR}/conf/${f} DESTINATION ${HQ_SHAREDIR}/${d})
    endif()
endforeach()

# ---- documentation and examples -----------------------------------------------------------
file(GLOB HQ_DOCS ${PROJECT_SOURCE_DIR}/docs/*.md)
install(FILES ${PROJECT_SOURCE_DIR}/README.md ${HQ_DOCS} DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(FILES ${PROJECT_SOURCE_DIR}/conf/hookmq.conf.example
              ${PROJECT_SOURCE_DIR}/conf/hookmq.conf.minimal
              ${PROJECT_SOURCE_DIR}/worker/examples/hello/hello.c
        DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples)

# ---- the example plugin -------------------------------------------------------------------
if(TARGET hq_example_hello)
    install(TARGETS hq_example_hello LIBRARY DESTINATION lib/hookmq/examples)
endif()

# ---- systemd units and the example config (paths decided at install time) ----------------
set(HQ_UNITS hookmq-gateway.service hookmq-worker@.service hookmq-archive.service
             hookmq-console.service)
install(CODE "
    set(_hq_prefix \"\${CMAKE_INSTALL_PREFIX}\")
    set(_hq_units)
    file(MAKE_DIRECTORY \"${CMAKE_BINARY_DIR}/hq-install/systemd\")
    foreach(_u ${HQ_UNITS})
        file(READ \"${PROJECT_SOURCE_DIR}/conf/systemd/\${_u}\" _t)
        # the units say /usr/bin/ (the package's layout); another prefix gets its own bin/
        if(NOT _hq_prefix MATCHES \"/usr$\")
            string(REPLACE \"/usr/bin/\" \"\${_hq_prefix}/${CMAKE_INSTALL_BINDIR}/\" _t \"\${_t}\")
        endif()
        file(WRITE \"${CMAKE_BINARY_DIR}/hq-install/systemd/\${_u}\" \"\${_t}\")
        list(APPEND _hq_units \"${CMAKE_BINARY_DIR}/hq-install/systemd/\${_u}\")
    endforeach()
    file(INSTALL DESTINATION \"\${_hq_prefix}/lib/systemd/system\" TYPE FILE
         PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ FILES \${_hq_units})

    # sysconfdir: an absolute CMAKE_INSTALL_SYSCONFDIR as given; for the prefix /usr (also
    # CPack's staging .../usr) the sibling /etc, as GNUInstallDirs does; else <prefix>/etc
    set(_hq_etc \"${CMAKE_INSTALL_SYSCONFDIR}\")
    if(NOT IS_ABSOLUTE \"\${_hq_etc}\")
        if(_hq_prefix MATCHES \"^(.*)/usr$\" AND _hq_etc STREQUAL \"etc\")
            set(_hq_etc \"\${CMAKE_MATCH_1}/etc\")
        else()
            set(_hq_etc \"\${_hq_prefix}/\${_hq_etc}\")
        endif()
    endif()
    file(INSTALL DESTINATION \"\${_hq_etc}/hookmq\" TYPE FILE
         PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ
         FILES \"${PROJECT_SOURCE_DIR}/conf/hookmq.conf.example\")
")

# ---- the Debian package -------------------------------------------------------------------
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME hookmq)
set(CPACK_PACKAGE_VENDOR "hookmq")
set(CPACK_PACKAGE_CONTACT "hookmq maintainers <hookmq-maintainers@example.org>")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "webhook gateway, workers and archive on RabbitMQ")
set(CPACK_PACKAGE_DESCRIPTION
    "hookmq receives webhooks, verifies their signatures (Stripe, GitHub, Shopify, Slack, \
Standard Webhooks and ten more schemes) and makes them durable in RabbitMQ before it \
answers; workers run handlers with delayed retries and dead-letter queues, an archive keeps \
every event and replays it.")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${CPACK_PACKAGE_CONTACT}")
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_HOMEPAGE "https://github.com/hookmq/hookmq")
# The libraries come from dpkg-shlibdeps, so that the package built on each Debian release
# names that release's packages (Debian 12: libconfig9, libssl3, libcurl4; Debian 13:
# libconfig11, libssl3t64, libcurl4t64); build the package on the release it is for
# (docs/deploy.md). adduser is for the maintainer scripts.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "adduser")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "rabbitmq-server, nginx | nginx-light, prometheus")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${PROJECT_SOURCE_DIR}/cmake/debian/postinst
    ${PROJECT_SOURCE_DIR}/cmake/debian/prerm
    ${PROJECT_SOURCE_DIR}/cmake/debian/postrm
    ${PROJECT_SOURCE_DIR}/cmake/debian/conffiles)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
include(CPack)

# ---- checks (ctest -L unit): man pages and --help/--version of every program, the units'
# required keys, the .deb built, unpacked and inspected, and the Grafana dashboard and alert
# rules against the metrics a live gateway exports (tests/package/) --------------------------
if(HQ_TESTS)
    add_test(NAME package.man
             COMMAND ${PROJECT_SOURCE_DIR}/tests/package/check-man.sh ${PROJECT_SOURCE_DIR}
                     ${CMAKE_BINARY_DIR})
    add_test(NAME package.units
             COMMAND ${PROJECT_SOURCE_DIR}/tests/package/check-units.sh
                     ${PROJECT_SOURCE_DIR}/conf/systemd)
    add_test(NAME package.deb
             COMMAND ${PROJECT_SOURCE_DIR}/tests/package/check-deb.sh ${CMAKE_BINARY_DIR})
    find_package(Python3 REQUIRED COMPONENTS Interpreter)
    add_test(NAME package.monitoring
             COMMAND ${Python3_EXECUTABLE} ${PROJECT_SOURCE_DIR}/tests/package/check_monitoring.py
                     ${PROJECT_SOURCE_DIR} ${CMAKE_BINARY_DIR})
    set_tests_properties(package.man package.units package.deb package.monitoring PROPERTIES
                         LABELS unit SKIP_RETURN_CODE 77 TIMEOUT 300)
endif()
