"""rig.world"""
