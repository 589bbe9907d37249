# Games (engine/grid_game.c, engine/policy_random.c, engine/game_loader.c,
# all in the library): the built-in grid game's rules and determinism, and
# plugin loading.

# The example plugin (examples/plugins/coin_game.c): a module, as any plugin
# loaded with dlopen() is, with hidden visibility so only xr_game_plugin()
# leaves it.
add_library(xr_coin_game MODULE ${PROJECT_SOURCE_DIR}/examples/plugins/coin_game.c)
target_include_directories(xr_coin_game PRIVATE ${PROJECT_SOURCE_DIR}/include)
target_compile_options(xr_coin_game PRIVATE ${XR_WARNINGS})
set_target_properties(xr_coin_game PROPERTIES C_VISIBILITY_PRESET hidden)

# Two broken plugins for the loader's error paths, built from the test's own
# source: one without the entry point, one speaking another ABI.
foreach(variant nosym badabi)
  add_library(xr_test_plugin_${variant} MODULE test_game_plugin.c)
  target_include_directories(xr_test_plugin_${variant} PRIVATE ${PROJECT_SOURCE_DIR}/include)
  target_compile_options(xr_test_plugin_${variant} PRIVATE ${XR_WARNINGS})
  string(TOUPPER ${variant} v)
  target_compile_definitions(xr_test_plugin_${variant} PRIVATE XR_TEST_PLUGIN_${v})
  set_target_properties(xr_test_plugin_${variant} PROPERTIES C_VISIBILITY_PRESET hidden)
endforeach()

xr_test(NAME test_grid_game_rules
  SOURCES test_grid_game_rules.c
  LABELS "unit;engine")
xr_test(NAME test_grid_game_determinism
  SOURCES test_grid_game_determinism.c
  LABELS "unit;engine" TIMEOUT 300)
xr_test(NAME test_game_plugin
  SOURCES test_game_plugin.c
  LABELS "unit;engine"
  ARGS $<TARGET_FILE:xr_coin_game> $<TARGET_FILE:xr_test_plugin_nosym>
       $<TARGET_FILE:xr_test_plugin_badabi>)
target_link_libraries(test_game_plugin PRIVATE ${CMAKE_DL_LIBS})
add_dependencies(test_game_plugin xr_coin_game xr_test_plugin_nosym xr_test_plugin_badabi)
