"""rig.render"""
